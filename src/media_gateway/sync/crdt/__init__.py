"""Pure CRDTs of the sync service: hybrid logical clock, OR-Set (watchlist), LWW register (progress).

No I/O here; the repository applies the same rules in SQL."""

from media_gateway.sync.crdt.hlc import ClockDriftError, HybridLogicalClock, Timestamp
from media_gateway.sync.crdt.lww import LWWRegister
from media_gateway.sync.crdt.orset import ORSet

__all__ = ["ClockDriftError", "HybridLogicalClock", "LWWRegister", "ORSet", "Timestamp"]
