"""One conversions run: THORChain bridges, linked bridges, DEX swaps, and the known-contract labels.

Everything happens in one workspace transaction and replaces what the previous run wrote (its
conversion flows and their `superseded` rows), so running it again after more data arrived
gives the same result as running it once on all the data.

Order matters: bridges first (their flows are the most specific evidence), then user links,
then swaps on the raw flows nobody superseded yet.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources

from heisttrace.conversions import links as links_mod
from heisttrace.conversions import store, swaps, thorchain
from heisttrace.ledger.schema import WATCHED_TOPICS
from heisttrace.ledger.workspace import Workspace
from heisttrace.sources.evm import EVM_CALLS_DDL, MEMO_PREFIXES, THORCHAIN_SELECTORS

KNOWN_SOURCE = "heisttrace-known"
KNOWN_CONFIDENCE = 80  # facts checked against labelled data sets (REFERENCE.md section 7)

Progress = Callable[[str], None]


@dataclass
class ConversionReport:
    swaps: swaps.SwapResult = field(default_factory=swaps.SwapResult)
    bridges: thorchain.ThorchainResult = field(default_factory=thorchain.ThorchainResult)
    links: links_mod.LinkResult = field(default_factory=links_mod.LinkResult)
    flows_written: int = 0
    superseded: int = 0
    labels_added: int = 0
    observed_labels: int = 0

    def summary(self) -> dict:
        return {
            "swaps": self.swaps.swaps,
            "swap_candidates": self.swaps.candidates,
            "swaps_ambiguous": len(self.swaps.ambiguous),
            "bridges_matched": self.bridges.matched,
            "bridges_unmatched": self.bridges.unmatched,
            "links_applied": self.links.applied,
            "links_pending": len(self.links.pending),
            "flows_written": self.flows_written,
            "superseded": self.superseded,
            "labels_added": self.labels_added,
            "observed_labels": self.observed_labels,
        }

    def to_dict(self) -> dict:
        return {"summary": self.summary(), **asdict(self)}


def known_contracts() -> list[dict]:
    """The routers, DEXes and aggregators we ship as data (known.csv)."""
    text = resources.files("heisttrace.conversions").joinpath("known.csv").read_text()
    return [
        {k: v.strip().lower() if k in ("chain", "address") else v.strip() for k, v in row.items()}
        for row in csv.DictReader(text.splitlines())
    ]


def label_known(ws: Workspace) -> int:
    """Add known.csv to `labels` (source heisttrace-known) where that label is not there yet."""
    added = 0
    for row in known_contracts():
        exists = ws.con.execute(
            "SELECT 1 FROM labels WHERE chain = ? AND address = ? AND source = ? AND category = ?",
            [row["chain"], row["address"], KNOWN_SOURCE, row["category"]],
        ).fetchone()
        if exists:
            continue
        ws.con.execute(
            """INSERT INTO labels (chain, address, entity, category, source, confidence,
               heuristic, evidence) VALUES (?, ?, ?, ?, ?, ?, false, ?)""",
            [row["chain"], row["address"], row["entity"], row["category"], KNOWN_SOURCE,
             KNOWN_CONFIDENCE, "heisttrace conversions/known.csv"],
        )
        added += 1
    return added


OBSERVED_SOURCE = "heisttrace-conversions"
OBSERVED_CONFIDENCE = 10  # heuristic level (REFERENCE.md section 5)
_POOL_EVENTS = {
    "univ2_swap": "Uniswap V2-style pool",
    "univ3_swap": "Uniswap V3-style pool",
    "curve_exchange": "Curve pool",
    "curve_crypto_exchange": "Curve crypto pool",
    "curve_ng_exchange": "Curve NG pool",
    "balancer_swap": "Balancer vault",
}


def label_observed(ws: Workspace) -> int:
    """Label what the logs and calldata show: DEX pools (swap event emitters) and THORChain
    routers and vaults (`Deposit` log emitters and their vaults, `deposit` call targets and
    their vaults, receivers of plain transfers with a swap memo).

    Without these labels a DEX deposit that no swap flow explains would look like a transfer to
    a wallet; with them the engine counts it as swapped (or bridged), untraced. Heuristic: any
    contract can emit a Swap event, so the label says so and carries its evidence. Replaced on
    every run.
    """
    ws.con.execute("DELETE FROM labels WHERE source = ?", [OBSERVED_SOURCE])
    topics = {name: topic for topic, name in WATCHED_TOPICS.items()}
    pools = " UNION ALL ".join(
        f"SELECT chain, address, '{entity}' AS entity, 'defi_dex' AS category, "
        f"'emits {name} events, e.g. in ' || min(tx_hash) AS evidence FROM evm_logs "
        f"WHERE topic0 = '{topics[name]}' GROUP BY chain, address"
        for name, entity in _POOL_EVENTS.items()
    )
    deposit = thorchain.DEPOSIT_TOPIC
    ws.con.execute(EVM_CALLS_DDL)
    router_calls = " OR ".join(f"starts_with(input, '{p}')" for p in THORCHAIN_SELECTORS)
    swap_memos = " OR ".join(
        f"starts_with(input, '0x{m.encode().hex()}')" for m in MEMO_PREFIXES
        if not m.upper().startswith(("OUT:", "REFUND:"))
    )
    router_calls = f"to_address IS NOT NULL AND ({router_calls})"
    swap_memos = f"to_address IS NOT NULL AND ({swap_memos})"
    sql = f"""
        WITH seen AS (
            {pools}
            UNION ALL
            SELECT chain, address, 'THORChain router', 'defi_bridge',
                   'emits THORChain Deposit events, e.g. in ' || min(tx_hash)
            FROM evm_logs WHERE topic0 = '{deposit}' GROUP BY chain, address
            UNION ALL
            SELECT chain, '0x' || substr(lower(topics[2]), 27), 'THORChain vault', 'defi_bridge',
                   'vault of a THORChain router Deposit, e.g. in ' || min(tx_hash)
            FROM evm_logs WHERE topic0 = '{deposit}' AND len(topics) >= 3
            GROUP BY chain, topics[2]
            UNION ALL
            SELECT chain, lower(to_address), 'THORChain router', 'defi_bridge',
                   'called with THORChain deposit calldata, e.g. in ' || min(tx_hash)
            FROM evm_calls WHERE {router_calls} GROUP BY chain, lower(to_address)
            UNION ALL
            SELECT chain, '0x' || substr(input, 35, 40), 'THORChain vault', 'defi_bridge',
                   'vault of a THORChain router deposit call, e.g. in ' || min(tx_hash)
            FROM evm_calls WHERE {router_calls} AND length(input) >= 74
            GROUP BY chain, substr(input, 35, 40)
            UNION ALL
            SELECT chain, lower(to_address), 'THORChain vault', 'defi_bridge',
                   'received a transfer with a THORChain swap memo, e.g. in ' || min(tx_hash)
            FROM evm_calls WHERE {swap_memos} GROUP BY chain, lower(to_address)
        ),
        one AS (SELECT DISTINCT ON (chain, address) * FROM seen ORDER BY chain, address, category)
        INSERT INTO labels
            (chain, address, entity, category, source, confidence, heuristic, evidence)
        SELECT chain, address, entity, category, '{OBSERVED_SOURCE}', {OBSERVED_CONFIDENCE},
               true, evidence
        FROM one o WHERE NOT EXISTS (
            SELECT 1 FROM labels l WHERE l.chain = o.chain AND l.address = o.address
              AND l.source = '{KNOWN_SOURCE}')
    """
    ws.con.execute(sql)
    return int(ws.con.execute(
        "SELECT count(*) FROM labels WHERE source = ?", [OBSERVED_SOURCE]).fetchone()[0])


def detect_conversions(
    ws: Workspace,
    progress: Progress | None = None,
    *,
    new_links: list[dict] | None = None,
    strict_file: str | None = None,
) -> ConversionReport:
    """Find swaps and bridges and write them as conversion flows, replacing the last run's."""
    say = progress or (lambda _msg: None)
    report = ConversionReport()
    store.ensure_tables(ws)
    with ws.transaction():
        report.labels_added = label_known(ws)
        report.observed_labels = label_observed(ws)
        if new_links:
            links_mod.store_links(ws, new_links)
        say("clearing the previous run")
        store.clear(ws)
        say("matching THORChain deposits to payouts")
        batch, report.bridges = thorchain.match_thorchain(ws)
        report.flows_written += batch.write(ws)
        report.superseded += len(batch.superseded)
        say("applying bridge links")
        batch, report.links = links_mod.apply_links(ws, strict_file=strict_file)
        report.flows_written += batch.write(ws)
        report.superseded += len(batch.superseded)
        say("netting DEX swaps")
        batch, report.swaps = swaps.detect_swaps(ws)
        report.flows_written += batch.write(ws)
        report.superseded += len(batch.superseded)
    return report
