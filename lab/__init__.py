"""A stand-in of the trading host (the guide's Intel NUC) built from real parts.

supervisord runs PostgreSQL 15, the agent API, the dashboard, an SSH-tunnel stand-in, a
Gate.io endpoint over TLS and the network check's probe target; the files follow the guide's
formats (sshd's auth.log included); faults are switch files. The
maintenance suite's tests drive it through `Lab`, operators through `python -m lab`.
"""

from lab.core import Lab
from lab.errors import FaultError, LabError, LabNotUp

__all__ = ["Lab", "LabError", "LabNotUp", "FaultError"]
