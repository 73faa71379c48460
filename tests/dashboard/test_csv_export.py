"""Unit tests of the dashboard's CSV downloads (no services)."""

from __future__ import annotations

import pandas as pd

from streamlit_app import csv_export


def test_table_csv_holds_the_shown_figures_and_makes_formulas_inert():
    frame = pd.DataFrame(
        {
            "coin_id": [1, 666],
            "symbol": ["BTC", "=EVIL"],
            "name": ["Bitcoin", '=HYPERLINK("http://attacker.example","x")'],
            "price": [55200.0, -0.5],
            "last_updated_at": pd.to_datetime(["2026-01-01 12:00", "2026-01-01 12:01"], utc=True),
            "quote_currency": ["EUR", "EUR"],
            "not_exported": [1, 2],
        }
    )
    text = csv_export.table_csv(frame, "quotes", {1: "BTC", 666: "=EVIL"}).decode()
    lines = text.splitlines()
    assert lines[0] == "coin_id,coin,symbol,name,price,last_updated_at,currency"
    assert lines[1] == "1,BTC,BTC,Bitcoin,55200.0,2026-01-01T12:00:00Z,EUR"
    # Text a spreadsheet would run starts with a quote; a negative number stays a number.
    assert lines[2].startswith("666,'=EVIL,'=EVIL,\"'=HYPERLINK(")
    assert ",-0.5,2026-01-01T12:01:00Z,EUR" in lines[2]
