"""The unexpected-port fault's listener on base+77 (lab.listener)."""

from lab.listener import unexpected

if __name__ == "__main__":
    unexpected()
