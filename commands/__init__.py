"""The operator's commands (`make install-schedule`, `make clear-budget`, ...), each `python -m commands.NAME`."""
