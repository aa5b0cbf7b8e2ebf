"""Schema upgrades of a node database with Alembic (``accord node migrate``).

A node database holds two independently versioned sets of tables, each with
its own Alembic script directory and version table:

========  ==================================  ============================
tables    scripts                             version table
========  ==================================  ============================
node      ``federation/migrations/versions``  ``node_alembic_version``
ledger    ``ledger/storage/migrations``       ``ledger_alembic_version``
========  ==================================  ============================

:func:`schema_states` reads where a database stands (without changing it);
:func:`upgrade` brings both sets to their head revisions, each in one
transaction (PostgreSQL: under an advisory lock, so replicas never migrate
at once). ``node start`` upgrades too unless ``auto_migrate = false`` in
``node.toml``; then it refuses a database that is behind
(:func:`require_current`), and the operator runs ``accord node migrate``
(docs/operator-guide.md, "Upgrade").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from federation.errors import ConfigError


def _ledger_scripts() -> Path:
    import ledger.storage

    return Path(ledger.storage.__file__).parent / "migrations"


COMPONENTS: tuple[tuple[str, Path, str], ...] = (
    ("node", Path(__file__).parent / "migrations", "node_alembic_version"),
    ("ledger", _ledger_scripts(), "ledger_alembic_version"),
)
"""(name, Alembic script directory, version table) of each set of tables in a node database."""


class SchemaError(ConfigError):
    """The database schema does not match this version of Accord (behind, or from a newer version)."""

    reason = "SCHEMA_MISMATCH"


@dataclass(frozen=True)
class SchemaState:
    """Where one set of tables stands.

    Attributes:
        component: ``"node"`` or ``"ledger"``.
        current: the database's revision (None: tables not created yet).
        head: the newest revision this version of Accord ships.
        pending: revisions an upgrade would apply, oldest first.

    """

    component: str
    current: str | None
    head: str
    pending: tuple[str, ...]


def _script(location: Path):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(location))
    return ScriptDirectory.from_config(cfg)


def schema_states(engine: Engine) -> list[SchemaState]:
    """Read each set's revision and what an upgrade would apply (nothing is changed).

    Raises:
        SchemaError: the database is at a revision this version does not know
            (written by a newer Accord: downgrading the software is not supported).

    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script.revision import ResolutionError
    from alembic.util import CommandError

    out = []
    with engine.connect() as conn:
        for name, location, table in COMPONENTS:
            script = _script(location)
            current = MigrationContext.configure(conn, opts={"version_table": table}).get_current_revision()
            head = script.get_current_head()
            assert head is not None
            try:
                revs = list(script.iterate_revisions(head, current))
            except (CommandError, ResolutionError):
                raise SchemaError(
                    f"{name} tables are at revision {current!r}, unknown to this version of Accord "
                    f"(newest known: {head}); was the database upgraded by a newer version?",
                    metadata={"component": name, "revision": str(current)},
                ) from None
            out.append(SchemaState(name, current, head, tuple(r.revision for r in reversed(revs))))
    return out


def upgrade(engine: Engine, database_url: str) -> list[SchemaState]:
    """Upgrade both sets of tables to head; returns the states *before* the upgrade.

    Raises:
        SchemaError: the database is from a newer version (nothing is changed).
        sqlalchemy.exc.SQLAlchemyError / ledger.StorageError: the database failed
            (each set's upgrade is one transaction: nothing is half-applied).

    """
    from federation.store import migrate
    from ledger.storage.repository import LedgerStore

    before = schema_states(engine)
    migrate(engine)
    LedgerStore.open(database_url, migrate=True).close()
    return before


def require_current(engine: Engine, *, allow_behind: bool = False) -> None:
    """Refuse a database from a newer version, and (unless ``allow_behind``) one that is behind.

    ``node start`` calls it before opening anything, with ``allow_behind =
    auto_migrate``. A fresh database (no tables at all) passes: creating
    tables is not an upgrade.

    Raises:
        SchemaError: some set of tables is behind (message names the revisions
            and ``accord node migrate``), or from a newer version.

    """
    states = schema_states(engine)
    behind = [s for s in states if s.current is not None and s.pending]
    if behind and not allow_behind:
        what = "; ".join(f"{s.component} tables at {s.current}, this version needs {s.head}" for s in behind)
        raise SchemaError(
            f"database schema is behind ({what}): back it up, then run `accord node migrate`",
            metadata={"components": ",".join(s.component for s in behind)},
        )
