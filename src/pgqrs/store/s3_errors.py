"""What an S3 store says when its object is not as it left it (shared by the store and the
object's client, neither of which may import the other)."""

from __future__ import annotations

from ..errors import PgqrsError

SYNC_CONFLICT = "Conflict: sync conflict: the remote object was replaced by another writer"
SNAPSHOT_REFUSED = "Conflict: snapshot refused: the local cache has unsynced writes"


class ObjectMissing(PgqrsError):
    """An `If-Match` upload found no object at all (it was deleted)."""


def conflict() -> PgqrsError:
    return PgqrsError(SYNC_CONFLICT)
