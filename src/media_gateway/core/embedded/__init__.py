"""The bundled PostgreSQL and Valkey servers that `media-gateway up` runs as child processes when
`MG_DATABASE_URL` / `MG_REDIS_URL` are unset.

Both are started directly (never through a daemonizing wrapper) with a parent-death signal, so a
crash or SIGKILL of the gateway takes them down too. Start them from the event-loop thread: the
kernel sends the parent-death signal when the *thread* that forked the child exits.
"""

from media_gateway.core.embedded.postgres import EmbeddedPostgres
from media_gateway.core.embedded.process import EmbeddedServerError
from media_gateway.core.embedded.stack import EmbeddedStack
from media_gateway.core.embedded.valkey import EmbeddedValkey

__all__ = ["EmbeddedPostgres", "EmbeddedServerError", "EmbeddedStack", "EmbeddedValkey"]
