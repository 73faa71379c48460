"""SQL injection: settings are validated before they reach SQL or a broker, and every query in
``plugins/moonwatch`` passes values as parameters (identifiers through ``psycopg.sql``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from moonwatch.errors import ConfigurationError
from moonwatch.settings import load_settings

PACKAGE = Path(__file__).resolve().parents[2] / "plugins" / "moonwatch"

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


# -- static check: no SQL built by string interpolation ------------------------------------------

_QUERY_METHODS = {"execute", "executemany", "copy", "stream"}


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _interpolates(node: ast.AST) -> str | None:
    """Why ``node`` builds a string from values (f-string, %, .format), else None."""
    if isinstance(node, ast.JoinedStr) and any(
        isinstance(v, ast.FormattedValue) for v in node.values
    ):
        return "an f-string"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _is_str(node.left):
        return "%-formatting"
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and (_is_str(node.func.value) or isinstance(node.func.value, ast.JoinedStr))
    ):
        return "str.format()"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _interpolates(node.left) or _interpolates(node.right)
    return None


def _concatenates_values(node: ast.AST) -> bool:
    """``"select " + name``: a + whose parts are not all string literals."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return not all(
            _is_str(part) or _concatenates_literals(part) for part in (node.left, node.right)
        )
    return False


def _concatenates_literals(node: ast.AST) -> bool:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return all(_is_str(p) or _concatenates_literals(p) for p in (node.left, node.right))
    return False


def _sql_composable_args(node: ast.AST) -> list[ast.AST]:
    """The string arguments of ``sql.SQL(...)`` calls anywhere inside ``node``."""
    found = []
    for sub in ast.walk(node):
        if (
            isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Attribute)
            and sub.func.attr == "SQL"
            and sub.args
        ):
            found.append(sub.args[0])
    return found


def unsafe_queries(source: str, filename: str = "<source>") -> list[str]:
    """Where ``source`` passes SQL built by interpolation to a driver call."""
    tree = ast.parse(source, filename)
    # Names assigned an interpolated string anywhere in the module (``q = f"..."; execute(q)``).
    tainted: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            why = _interpolates(node.value)
            if why:
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        tainted[target.id] = why
    problems = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _QUERY_METHODS
        ):
            continue
        query = (
            node.args[0]
            if node.args
            else next((k.value for k in node.keywords if k.arg == "query"), None)
        )
        if query is None:
            continue
        where = f"{filename}:{node.lineno}"
        why = _interpolates(query)
        if why is None and isinstance(query, ast.Name):
            why = tainted.get(query.id)
        if why is None and _concatenates_values(query):
            why = "+ concatenation of a value"
        if why is None:
            why = next(filter(None, map(_interpolates, _sql_composable_args(query))), None)
            why = f"sql.SQL() of {why}" if why else None
        if why:
            problems.append(f"{where}: .{node.func.attr}() with SQL built by {why}")
    return problems


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
    ],
)
def test_static_check_catches_interpolated_sql(snippet: str) -> None:
    assert unsafe_queries(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        'conn.execute("select * from t where id = %s", (value,))',
        'conn.execute("select 1" " from t")',
        'conn.execute("select 1" + " from t")',
        'conn.execute(sql.SQL("select * from {}").format(sql.Identifier(table)))',
        'conn.execute(sql.SQL("grant {p} to {r}").format(p=sql.SQL(p), r=sql.Identifier(r)))',
        'logger.info(f"rows: {n}")',
    ],
)
def test_static_check_passes_parameterised_sql(snippet: str) -> None:
    assert unsafe_queries(snippet) == [], snippet


def test_no_sql_built_by_interpolation_in_the_package() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    problems = [
        p for f in files for p in unsafe_queries(f.read_text(), str(f.relative_to(PACKAGE)))
    ]
    assert problems == [], "\n".join(problems)
