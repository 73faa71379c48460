"""The pipeline part of the page: per raw table its last load and rejects, the newest
reconciliation verdict, the CoinMarketCap credits and pace, and recent alerts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from streamlit_app import freshness, markup
from streamlit_app.loading import Missing

# Per raw table (``source_name``): its title, where its rows come from, and how many seconds
# without a load make it stale.
SOURCE_LABELS = {
    "crypto_quotes": ("Quotes", "Kafka topic → raw.crypto_quotes", 5 * 60),
    "crypto_listings": ("Listings", "top-10 snapshots → raw.crypto_listings", 60 * 60),
    "fx_rates": ("FX rates", "daily reference rates → raw.fx_rates", 2 * 86400),
}


# ECB reference rates come on working days: a Monday morning's newest rate is Friday's, and
# Easter's four-day weekend makes it four days old, so FX is stale only after that.
FX_STALE_DAYS = 4


def health_section(health: pd.DataFrame | Missing, fx_as_of: object | None) -> None:
    """``health`` is :func:`queries.pipeline_health` kept to the shown source. Where the mart
    judges each row itself (``status`` 'ok'/'warn'/'error', ``status_reason``) the page shows
    that verdict; else it judges by the age of the last load. ``fx_as_of`` is the newest
    rate's own date: FX freshness follows it, not the time the rates were last upserted (a
    re-fetch of an unchanged, week-old rate is not fresh)."""
    st.subheader("Pipeline health")
    if isinstance(health, Missing):
        st.info(f"{health.reason}.", icon=":material/info:")
        return
    order = {name: i for i, name in enumerate(SOURCE_LABELS)}
    rows = sorted(health.itertuples(index=False), key=lambda r: order.get(r.source_name, 99))
    for col, row in zip(st.columns(max(3, len(rows))), rows, strict=False):
        title, detail, stale_after = SOURCE_LABELS.get(
            str(row.source_name), (str(row.source_name), "", 3600)
        )
        age = freshness.age_seconds(row.last_loaded_at)
        value = f"loaded {freshness.format_age(row.last_loaded_at)}"
        stale_note = ":orange[stale: no load for longer than expected]"
        if row.source_name == "fx_rates":
            days = freshness.days_old(fx_as_of)
            age = None if days is None else days * 86400.0
            stale_after = FX_STALE_DAYS * 86400
            value = "no rates yet" if days is None else f"rates of {fx_as_of} ({days} d old)"
            stale_note = f":orange[stale: the newest rate is over {FX_STALE_DAYS} days old]"
        rejected = int(row.rejected_last_hour or 0) if pd.notna(row.rejected_last_hour) else 0
        loaded = int(row.rows_last_hour) if pd.notna(row.rows_last_hour) else 0
        stale = age is None or age > stale_after
        # The mart's own verdict where it has one; the page's age check can only add a warning.
        status = str(getattr(row, "status", "") or "")
        reason = getattr(row, "status_reason", None)
        ok = not stale and rejected == 0 and status in ("", "ok")
        with col:
            st.metric(
                f"{title} · `{row.source_name}`",
                value,
                delta=f"{loaded:,} rows last hour",
                delta_color="off",
                delta_arrow="off",
                icon=":material/check_circle:" if ok else ":material/warning:",
                border=True,
                help=detail,
            )
            if status in ("warn", "error") and isinstance(reason, str) and reason:
                color = "red" if status == "error" else "orange"
                st.caption(f":{color}[{markup.md_text(reason)}]")
            elif rejected:
                st.caption(f":red[{rejected:,} rejected in the last hour]")
            elif stale:
                st.caption(stale_note)
            else:
                st.caption(":green[no rejected messages in the last hour]")


def reconciliation_section(runs: pd.DataFrame | Missing) -> None:
    """The newest reconciliation run (crypto_reconcile DAG): the numbers are checked against
    the source, and a mismatch or a lost quote is loud."""
    if isinstance(runs, Missing):
        st.caption(
            "Reconciliation: no run yet; the `crypto_reconcile` DAG asks the source again every "
            "hour and compares with the marts."
        )
        return
    run = runs.iloc[0]
    counts = (
        f"{int(run.matched)} of {int(run.samples)} coins matched the source"
        f" · {int(run.superseded)} not comparable (a version the producer never fetched)"
    )
    when = f"Reconciliation of {freshness.format_age(run.sampled_at)}"
    if run.status == "error":
        coins = markup.md_text(run.mismatched_coins) if run.mismatched_coins else "none"
        st.error(
            f"{when}: {int(run.mismatched)} mismatched (coins: {coins}), {int(run.not_loaded)} "
            f"never reached the marts; {counts}. See the `crypto_reconcile` run in Airflow.",
            icon=":material/error:",
        )
    elif run.status == "pending":
        st.caption(f"{when}: {int(run.pending)} still waiting for their quote; {counts}.")
    else:
        st.caption(f":green[{when}: {counts}.]")


def credits_section(budget: pd.DataFrame | Missing) -> None:
    """One line: how often the producer calls CoinMarketCap now (paced to the month's
    budget) and the month's credits used and left."""
    if isinstance(budget, Missing):
        st.caption("Credits: no producer run has recorded its pace yet.")
        return
    row = budget.iloc[0]

    def every(minutes: object) -> str:
        if pd.isna(minutes):
            return "paused until the 1st (UTC)"
        return "every minute" if int(minutes) == 1 else f"every {int(minutes)} minutes"

    cadence = (
        f"quotes {every(row.quotes_every_minutes)} · listings {every(row.listings_every_minutes)}"
    )
    if row.is_simulated:
        st.caption(
            f"Credits (simulator, free): {cadence} · {int(row.credits_used):,} counted this month"
        )
    else:
        st.caption(
            f"CoinMarketCap credits: {cadence} · {int(row.credits_used):,} of "
            f"{int(row.credits_budget):,} used this month, {int(row.credits_left):,} left"
        )


def alerts_section(alerts: pd.DataFrame | Missing) -> None:
    """Recent alerts (crypto_alerts, rules in dbt_project/alerts.yml): what fired, whether it
    still holds, and whether its notification went out."""
    st.subheader("Alerts")
    if isinstance(alerts, Missing):
        st.caption(
            "No alerts yet. Rules live in `dbt_project/alerts.yml` or the Airflow Variable "
            "`moonwatch_alert_rules`; see README, Alerts."
        )
        return
    table = pd.DataFrame(
        {
            "status": alerts["status"],
            "alert": alerts["title"].str.replace("Moonwatch alert: ", "", regex=False),
            "started (UTC)": alerts["opened_at"],
            "resolved (UTC)": alerts["resolved_at"],
            "sent": alerts["open_sent_at"].notna().map({True: "yes", False: "not sent"}),
            "why not sent": alerts["delivery_error"],
        }
    )
    st.dataframe(table, hide_index=True, use_container_width=True)
