"""The network check's probe target on base+53 (lab.listener)."""

from lab.listener import probe_target

if __name__ == "__main__":
    probe_target()
