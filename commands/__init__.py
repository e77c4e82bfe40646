"""The operator's commands (`make install-schedule`, `make clear-budget`, ...): `python -m commands VERB`, each
verb a module of this package (commands/__main__.py)."""
