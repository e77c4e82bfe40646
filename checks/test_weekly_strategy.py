"""Manual Weekly 1: Strategy Performance Review: the strategies file the agent trades by.

The guide prints `jq '.strategies[] | {name, enabled, weight, performance}'` of its strategies.json for
the operator to read; here those are the figures of STRAT-001, and what the guide leaves to the reader's
eye is checked: the file parses into strategies, the enabled ones' weights add up to 1, and no enabled
strategy has weight 0. The review itself, a human's judgement of the performance, is a manual task
attested with `make attest`.
"""

import pytest

pytestmark = pytest.mark.weekly


def _readable(strategy_file):
    """A file that does not parse has no weights to judge: STRAT-001's finding, not a pass here."""
    __tracebackhide__ = True
    assert not strategy_file.problems and strategy_file.strategies, (
        f"{strategy_file.path} cannot be judged: {'; '.join(strategy_file.problems) or 'no strategy listed'}")


@pytest.mark.check("STRAT-001", severity="warning",
                   why="a strategies file the agent cannot read leaves it trading with something else, or not at all")
def test_strategies_file_is_readable(strategy_file, record_property):
    record_property("strategies", "; ".join(strategy.describe() for strategy in strategy_file.strategies) or "none")
    record_property("strategies_enabled", len(strategy_file.enabled))
    assert not strategy_file.problems, f"{strategy_file.path}: {'; '.join(strategy_file.problems)}"
    assert strategy_file.strategies, f"{strategy_file.path} lists no strategy"


@pytest.mark.check("STRAT-002", severity="warning", depends_on="STRAT-001",
                   why="weights that do not add up to 1 put more or less capital at risk than the operator chose")
def test_enabled_weights_add_up_to_one(strategy_file, settings, record_property):
    _readable(strategy_file)
    total = sum(strategy.weight for strategy in strategy_file.enabled)
    record_property("enabled_weight_sum", f"{total:g}")
    tolerance = settings.weekly_review.weight_tolerance
    assert abs(total - 1) <= tolerance, (
        f"the enabled strategies' weights add up to {total:g}, not 1 (± {tolerance:g}; off by {total - 1:+g}): "
        + (", ".join(f"{s.name} {s.weight:g}" for s in strategy_file.enabled) or "no strategy is enabled"))


@pytest.mark.check("STRAT-003", severity="warning", depends_on="STRAT-001",
                   why="an enabled strategy with weight 0 looks active in the dashboard but never trades")
def test_no_enabled_strategy_without_weight(strategy_file):
    _readable(strategy_file)
    idle = [strategy.name for strategy in strategy_file.enabled if strategy.weight == 0]
    assert not idle, (
        f"enabled with weight 0 in {strategy_file.path}: {', '.join(idle)} (disable them or give them a weight)")
