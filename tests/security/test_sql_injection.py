"""SQL injection: settings are validated before they reach SQL or a broker, and every query in
``plugins/moonwatch`` passes values as parameters (identifiers through ``psycopg.sql``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from moonwatch.errors import ConfigurationError
from moonwatch.settings import load_settings

INJECTIONS = [
    ("MOONWATCH_SYMBOLS", "BTC'; drop table raw.crypto_quotes;--"),
    ("MOONWATCH_SYMBOLS", "BTC,ETH);delete from raw.crypto_quotes"),
    ("MOONWATCH_SYMBOLS", "id:1 or 1=1"),
    ("MOONWATCH_SYMBOLS", "BTC\x00"),
    ("MOONWATCH_TOPIC", "crypto; drop"),
    ("MOONWATCH_TOPIC", "crypto' or '1'='1"),
    ("MOONWATCH_TOPIC", "../crypto"),
    ("MOONWATCH_TOPIC", "x" * 250),
    ("MOONWATCH_QUOTE_CURRENCY", "USD' or 1=1"),
    ("MOONWATCH_QUOTE_CURRENCY", "USD;--"),
    ("MOONWATCH_QUOTE_CURRENCY", "USD,EUR"),
]


@pytest.mark.parametrize(("name", "value"), INJECTIONS)
def test_injection_in_settings_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    if "\x00" in value:
        # An environment cannot hold NUL; the same check guards the Airflow Variable path.
        from moonwatch.settings import parse_symbols

        with pytest.raises(ValueError, match="not a ticker"):
            parse_symbols(value)
        return
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert name in message
    # The refusal is clear and does not echo the value into some other variable's complaint.
    assert message.count(name) >= 1 and "invalid" in message


def test_clean_settings_still_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOONWATCH_SYMBOLS", "BTC, eth ,id:5426,$PEPE,BTC.b")
    monkeypatch.setenv("MOONWATCH_TOPIC", "crypto.quotes-v1_test")
    monkeypatch.setenv("MOONWATCH_QUOTE_CURRENCY", "eur")
    settings = load_settings()
    assert settings.topic == "crypto.quotes-v1_test" and settings.quote_currency == "EUR"


# -- static check: every query is literal SQL text or a psycopg.sql composition of it -------------
#
# A query reaching a driver call must be built only from string literals: a literal, literals
# joined with +, a name every binding of which is such a literal (also a loop over a tuple of
# literals), or ``sql.SQL(<literal>)`` / SQLAlchemy ``text(<literal>)`` composed with
# ``.format(sql.Identifier(...), ...)``. Anything else (an f-string, %, .format() on a str, + of a
# value, str.join, a parameter, a call's result) is reported, unless the line carries
# ``# trusted-sql: <why>`` naming why that text cannot come from outside.

SCANNED = ("plugins/moonwatch", "streamlit_app", "dags", "bench")
_QUERY_METHODS = {"execute", "executemany", "copy", "stream", "query", "read_sql", "read_sql_query"}
_TEXT_WRAPPERS = {"SQL", "text"}  # their first argument is SQL text, taken as is
_ESCAPING = {"Identifier", "Literal", "Placeholder"}  # they quote whatever they are given
_PRAGMA = re.compile(r"#\s*trusted-sql:\s*\S")


def _callee(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _bindings(tree: ast.AST) -> dict[str, list[ast.AST | None]]:
    """Every value bound to each name (None: a binding we cannot see, e.g. a parameter)."""
    bound: dict[str, list[ast.AST | None]] = {}
    # Module-level tuples and lists (``MARTS = ("a", "b")``), so a loop over one is literal.
    constants = {
        t.id: n.value
        for n in getattr(tree, "body", [])
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Tuple | ast.List)
        for t in n.targets
        if isinstance(t, ast.Name)
    }

    def add(target: ast.AST, value: ast.AST | None) -> None:
        if isinstance(target, ast.Name):
            bound.setdefault(target.id, []).append(value)
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                add(element, None)

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                add(target, node.value)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            add(node.target, node.value)
        elif isinstance(node, ast.AugAssign):
            add(
                node.target,
                ast.BinOp(ast.Name(getattr(node.target, "id", "")), node.op, node.value),
            )
        elif isinstance(node, ast.For | ast.comprehension):
            items = _literal_sequence(node.iter, constants)
            if isinstance(node.target, ast.Name) and items is not None:
                for item in items:
                    add(node.target, item)
            else:
                add(node.target, None)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            args = node.args
            for arg in args.posonlyargs + args.args + args.kwonlyargs:
                bound.setdefault(arg.arg, []).append(None)
        elif isinstance(node, ast.NamedExpr):
            add(node.target, node.value)
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                if item.optional_vars is not None:
                    add(item.optional_vars, None)
    return bound


def _literal_sequence(node: ast.AST, constants: dict[str, ast.AST]) -> list[ast.AST] | None:
    if isinstance(node, ast.Name):
        node = constants.get(node.id, node)
    return list(node.elts) if isinstance(node, ast.Tuple | ast.List) else None


class _Checker:
    def __init__(self, tree: ast.AST) -> None:
        self.bound = _bindings(tree)
        self._visiting: set[str] = set()

    def why_text(self, node: ast.AST) -> str | None:
        """Why ``node`` is not literal SQL text, else None."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return None
        if isinstance(node, ast.JoinedStr):
            # An f-string of literal text only (module constants such as a column list) is
            # literal text itself; any other value in it is interpolation.
            values = [v.value for v in node.values if isinstance(v, ast.FormattedValue)]
            return "an f-string" if any(self.why_text(v) for v in values) else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            return "%-formatting"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            parts = (self.why_text(node.left), self.why_text(node.right))
            return next((p for p in parts if p), None) and "+ concatenation of a value"
        if isinstance(node, ast.IfExp):
            return self.why_text(node.body) or self.why_text(node.orelse)
        if isinstance(node, ast.Call) and _callee(node) == "format":
            return "str.format()"
        if isinstance(node, ast.Call) and _callee(node) == "join":
            return "str.join() of values"
        if isinstance(node, ast.Name):
            return self._why_name(node.id, self.why_text)
        return "a value computed at run time"

    def why_query(self, node: ast.AST) -> str | None:
        """Why ``node`` (a driver call's query) is not built from literal SQL only."""
        if isinstance(node, ast.Call):
            name = _callee(node)
            if name in _TEXT_WRAPPERS:
                inner = node.args[0] if node.args else None
                why = self.why_text(inner) if inner is not None else None
                return f"{name}() of {why}" if why else None
            if name in _ESCAPING:
                return None
            if name in ("format", "join") and isinstance(node.func, ast.Attribute):
                base = self.why_query(node.func.value)
                if base:
                    return base
                if self._is_composable(node.func.value):
                    parts = list(node.args) + [k.value for k in node.keywords]
                    if name == "join":
                        parts = [node.func.value]
                    return next(filter(None, map(self._why_part, parts)), None)
                return self.why_text(node)
            if name == "Composed":
                return next(filter(None, map(self._why_part, node.args)), None)
        if isinstance(node, ast.Name):
            return self._why_name(node.id, self.why_query)
        if isinstance(node, ast.IfExp):
            return self.why_query(node.body) or self.why_query(node.orelse)
        return self.why_text(node)

    def _why_part(self, node: ast.AST) -> str | None:
        """A ``.format()`` argument: plain values become literals, but SQL text must be literal."""
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and _callee(sub) in _TEXT_WRAPPERS:
                why = self.why_query(sub)
                if why:
                    return why
        return None

    def _is_composable(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Call):
            name = _callee(node)
            return name in _TEXT_WRAPPERS | _ESCAPING | {"Composed", "format", "join"}
        if isinstance(node, ast.Name):
            values = self.bound.get(node.id, [])
            return bool(values) and all(v is not None and self._is_composable(v) for v in values)
        return False

    def _why_name(self, name: str, check) -> str | None:
        values = self.bound.get(name)
        if not values or None in values:
            return f"the variable {name!r}, which is not bound only to literal SQL"
        if name in self._visiting:
            return None
        self._visiting.add(name)
        try:
            why = next(filter(None, map(check, values)), None)
        finally:
            self._visiting.discard(name)
        return f"{name!r} holding {why}" if why else None


def _query_arg(node: ast.Call, position: int, names: tuple[str, ...]) -> ast.AST | None:
    if len(node.args) > position:
        return node.args[position]
    return next((k.value for k in node.keywords if k.arg in names), None)


def _driver_calls(tree: ast.AST) -> Iterator[tuple[ast.Call, ast.AST]]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _QUERY_METHODS
        ):
            query = _query_arg(node, 0, ("query", "sql"))
            if query is not None:
                yield node, query


def _query_helpers(tree: ast.AST) -> tuple[dict[str, tuple[int, str]], set[int]]:
    """Functions that hand one of their parameters to a driver call as the query (such as a
    ``_read(sql, params)`` helper): name → (position, parameter), and those driver calls, which
    are skipped because every call of the helper is checked instead."""
    helpers: dict[str, tuple[int, str]] = {}
    passed_through: set[int] = set()
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        params = [a.arg for a in func.args.posonlyargs + func.args.args]
        for call, query in _driver_calls(func):
            inner = query
            if isinstance(inner, ast.Call) and _callee(inner) in _TEXT_WRAPPERS and inner.args:
                inner = inner.args[0]
            # Only private helpers: a public function's callers may live in other modules.
            if func.name.startswith("_") and isinstance(inner, ast.Name) and inner.id in params:
                helpers[func.name] = (params.index(inner.id), inner.id)
                passed_through.add(id(call))
    # A helper of a helper (``_read_source(sql, ...)`` handing ``sql`` to ``_read``) is one too:
    # its callers are checked instead, until no new helper appears.
    functions = [
        f
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef) and f.name.startswith("_")
    ]
    found = True
    while found:
        found = False
        for func in functions:
            params = [a.arg for a in func.args.posonlyargs + func.args.args]
            for call in ast.walk(func):
                if not (isinstance(call, ast.Call) and _callee(call) in helpers):
                    continue
                position, param = helpers[_callee(call)]
                query = _query_arg(call, position, (param,))
                if isinstance(query, ast.Name) and query.id in params:
                    passed_through.add(id(call))
                    if func.name not in helpers:
                        helpers[func.name] = (params.index(query.id), query.id)
                        found = True
    return helpers, passed_through


def unsafe_queries(source: str, filename: str = "<source>") -> list[str]:
    """Where ``source`` passes SQL not built from literals to a driver call, or to a helper of
    the same module that hands it on to one, and why."""
    tree = ast.parse(source, filename)
    lines = source.splitlines()
    checker = _Checker(tree)
    helpers, passed_through = _query_helpers(tree)
    calls = [
        (node, query, f".{node.func.attr}()")
        for node, query in _driver_calls(tree)
        if id(node) not in passed_through
    ]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and _callee(node) in helpers
            and id(node) not in passed_through
        ):
            position, param = helpers[_callee(node)]
            query = _query_arg(node, position, (param,))
            if query is not None:
                calls.append((node, query, f"{_callee(node)}()"))
    problems = []
    for node, query, what in calls:
        span = lines[node.lineno - 1 : (node.end_lineno or node.lineno)]
        if any(_PRAGMA.search(line) for line in span):
            continue
        why = checker.why_query(query)
        first_line = (ast.get_source_segment(source, query) or "").splitlines()[0].strip()
        if why and (filename, first_line) not in REVIEWED:
            problems.append(f"{filename}:{node.lineno}: {what} with SQL built by {why}")
    return sorted(problems)


# Reviewed exceptions, keyed by file and the first line of the query's source (so a changed
# query is checked again). Each says why the text cannot come from outside the code.
_CATALOG = "names and definitions read from pg_indexes/pg_constraint of a table the bench names"
REVIEWED: dict[tuple[str, str], str] = {
    ("streamlit_app/queries.py", '"with newest as ("'): "f-string parts are the STAMPED_AT "
    "constant; `order` is a literal assigned just above",
    (
        "streamlit_app/queries.py",
        '"select snapshot_at, rank, coin_id, symbol, name, quote_currency, source, is_simulated, "',
    ): "`table` is checked against the two literal mart names first",
    (
        "streamlit_app/queries.py",
        'f"select exists (select 1 from marts.{table}) as has_rows"',
    ): "`table` iterates over the MARTS constant",
    ("bench/dashboard.py", "text(sql)"): "the dashboard's own queries, captured by "
    "captured_queries() from streamlit_app/queries.py",
    ("bench/dbt_incremental.py", "f'alter table {table} drop constraint \"{cname}\"'"): _CATALOG,
    ("bench/dbt_incremental.py", 'f"analyze {table}"'): _CATALOG,
    ("bench/dbt_incremental.py", "f'drop index if exists {schema}.\"{iname}\"'"): _CATALOG,
    (
        "bench/dbt_incremental.py",
        "f'alter table {table} add constraint \"{cname}\" {cdef}'",
    ): _CATALOG,
    ("bench/dbt_incremental.py", "idef"): _CATALOG,
    ("bench/dbt_incremental.py", "insert_minutes_sql(with_loaded_at=False)"): "a function of the "
    "bench returning literal SQL (two variants)",
    ("bench/dbt_incremental.py", "insert_minutes_sql(with_loaded_at=True)"): "as above",
    ("bench/dbt_incremental.py", "_MART_FILL"): "a module constant f-string of other constants",
    ("moonwatch/warehouse/migrate.py", "path.read_text()"): "migration files shipped in the "
    "package (migration_files() lists plugins/moonwatch/warehouse/migrations only)",
    ("moonwatch/reconcile.py", "CLASSIFY_SQL"): "a module constant: a literal template "
    "formatted with _differs(f) for each f of the constant COMPARED_FIELDS",
}


@pytest.mark.parametrize(
    "snippet",
    [
        'conn.execute(f"select * from raw.t where id = {value}")',
        "cur.execute(\"select * from t where a = '%s'\" % value)",
        'conn.execute("select * from {}".format(table))',
        'cur.executemany("insert into t values (" + value + ")", rows)',
        'conn.execute(sql.SQL(f"select * from {table}"))',
        'conn.execute(sql.SQL("select {} from t".format(col)))',
        'q = f"delete from t where id = {i}"\nconn.execute(q)',
        'cur.copy(f"copy {table} from stdin")',
        'conn.execute(query=f"select {x}")',
        # What the old check missed:
        'conn.execute(sql.SQL("select * from " + name))',
        'conn.execute(sql.SQL("alter role {} " + verb).format(sql.Identifier(r)))',
        "def f(conn, user_input):\n    conn.execute(sql.SQL(user_input))",
        'conn.execute(sql.SQL("grant {p} to {r}").format(p=sql.SQL(p), r=sql.Identifier(r)))',
        'q = "select * from " + table\nconn.execute(q)',
        'q = "select 1"\nq += where\nconn.execute(q)',
        'conn.execute(" ".join(["select", col, "from t"]))',
        "def run(conn, statement):\n    conn.execute(statement)",
        "conn.execute(queries[name])",
        'conn.execute(text("select * from t where c = " + c))',
        "conn.query(f\"select * from marts.x where s = '{symbol}'\")",
        'pd.read_sql("select * from " + t, engine)',
        'for q in ("select 1", user):\n    conn.execute(q)',
        "q = build()\nconn.execute(sql.SQL(q).format(x=1))",
        # Through a helper of a helper: the outer call is what is checked.
        "def _read(q, p):\n    conn.execute(text(q), p)\n"
        "def _read_source(q, s):\n    return _read(q, {'s': s})\n"
        '_read_source(f"select * from t where a = {x}", "s")',
    ],
)
def test_static_check_catches_sql_not_built_from_literals(snippet: str) -> None:
    assert unsafe_queries(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        'conn.execute("select * from t where id = %s", (value,))',
        'conn.execute("select 1" " from t")',
        'conn.execute("select 1" + " from t")',
        'conn.execute(sql.SQL("select * from {}").format(sql.Identifier(table)))',
        'p = "select"\nconn.execute(sql.SQL("{p} {r}").format(p=sql.SQL(p), r=sql.Identifier(r)))',
        'logger.info(f"rows: {n}")',
        'for s in ("grant a to {r}", "revoke b"):\n    conn.execute(sql.SQL(s).format(r=x))',
        'verb = "alter" if e else "create"\nconn.execute(sql.SQL(verb + " role {}").format(x))',
        'q = sql.SQL("select {} from t").format(sql.Identifier(c))\nconn.execute(q, (1,))',
        'conn.execute(text("select * from t where c = :c"), {"c": c})',
        'conn.execute(f"select {col} from t")  # trusted-sql: col is one of three constants',
        'conn.execute(sql.SQL(", ").join(sql.Identifier(c) for c in cols))',
        'COLS = "a, b"\nconn.execute(f"select {COLS} from t")',
        'MARTS = ("x", "y")\nfor m in MARTS:\n    conn.execute(f"select 1 from marts.{m}")',
        'def _read(q, p):\n    conn.execute(text(q), p)\n_read("select 1", {})',
        "def _read(q, p):\n    conn.execute(text(q), p)\n"
        "def _read_source(q, s):\n    return _read(q, {'s': s})\n"
        '_read_source("select * from t where s = :s", "s")',
    ],
)
def test_static_check_passes_sql_built_from_literals(snippet: str) -> None:
    assert unsafe_queries(snippet) == [], snippet


@pytest.mark.parametrize("folder", SCANNED)
def test_no_sql_built_from_values(folder: str) -> None:
    root = Path(__file__).resolve().parents[2] / folder
    files = sorted(root.rglob("*.py"))
    assert files, f"nothing to scan in {folder}"
    problems = [
        p for f in files for p in unsafe_queries(f.read_text(), str(f.relative_to(root.parent)))
    ]
    assert problems == [], "\n".join(problems)
