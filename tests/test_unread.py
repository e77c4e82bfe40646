"""core/unread.py: a reading that did not happen is UNKNOWN with its cause and its fix, never a finding."""

from __future__ import annotations

import pickle

from core.unread import CouldNotRead
from core.vocabulary import Unread, Verdict
from decision.verdict import verdict_of


def test_it_says_what_could_not_be_read_where_why_and_the_fix():
    error = CouldNotRead(Unread.SECRET_MISSING, "the database", "TRADING_DB_PASSWORD is not set",
                         "set it in the secrets file /etc/trading-maintenance/secrets.env", box="nuc-1")
    assert str(error) == ("could not read the database on box nuc-1: secret not available (TRADING_DB_PASSWORD "
                          "is not set): set it in the secrets file /etc/trading-maintenance/secrets.env")


def test_it_is_unknown_even_raised_inside_the_check_never_failed():
    error = CouldNotRead(Unread.SUDO_REFUSED, "pg_restore --list", "a password is required")
    assert verdict_of(False, False, True, error) == (Verdict.UNKNOWN, str(error))
    assert verdict_of(False, False, True, AssertionError("down"))[0] == Verdict.FAILED


def test_only_a_dead_transport_or_an_untrusted_host_key_stops_the_whole_box():
    assert {cause for cause in Unread if cause.whole_box} == {Unread.TRANSPORT, Unread.TIMEOUT, Unread.HOST_KEY}


def test_it_travels_whole_between_processes():
    error = CouldNotRead(Unread.TIMEOUT, "the agent API", "5 s", box="nuc-2")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.cause, copy.what, copy.box, str(copy)) == (error.cause, error.what, error.box, str(error))
