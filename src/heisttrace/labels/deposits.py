"""Exchange deposit addresses (Victor, "Address clustering heuristics for Ethereum", FC 2020).

An exchange gives each customer a deposit address D and sweeps what arrives there into its
own wallets. So D receives funds and soon forwards (nearly) all of it, minus gas, to ONE
known exchange wallet. Thresholds (REFERENCE.md section 6, from the author's etherclust
code): 0 <= received - forwarded <= a_max (0.01 ETH; plus the gas D paid), forward within
t_max = 10,000 blocks. Here, per (D, asset):

- every outflow of D (other than gas) goes to wallets of one exchange (role cash_out,
  imported, not a heuristic label);
- native coin: 0 <= received - forwarded <= a_max + gas paid by D; token: the part kept is at
  most `max_token_keep` of what arrived (token decimals are not always known);
- every inflow is followed by an outflow of the same asset within t_max blocks;
- D itself carries no imported label (known services are not deposit addresses).

D gets label `deposit_wallet` (role cash_out), entity = the exchange, heuristic, confidence 10,
with its evidence. Everyone who paid into D is one customer: the senders go to
`deposit_clusters` (Victor's deposit-address clustering).

Everything is one DuckDB query over `ledger` (hash joins and window functions only), so
millions of flows take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from heisttrace.labels.normalize import HEURISTIC_CONFIDENCE
from heisttrace.labels.roles import load_role_map
from heisttrace.ledger.workspace import Workspace

SOURCE = "heuristic:deposits"
WEI_PER_ETH = 10**18

_CLUSTERS_DDL = """
CREATE TABLE IF NOT EXISTS deposit_clusters (
    chain VARCHAR NOT NULL, deposit_address VARCHAR NOT NULL, exchange VARCHAR,
    sender VARCHAR NOT NULL
)
"""


@dataclass(frozen=True)
class DepositParams:
    max_fee_eth: float = 0.01  # a_max, in whole native coins
    max_blocks: int = 10_000  # t_max
    max_token_keep: float = 0.01  # share of a token D may keep


def _detect_sql(p: DepositParams) -> str:
    a_max = float(p.max_fee_eth) * WEI_PER_ETH
    return f"""
    WITH ex AS (
        SELECT l.chain, l.address,
               arg_max(coalesce(l.actor, l.entity, l.category), coalesce(l.confidence, 0)) AS exchange
        FROM labels l JOIN _role_map m ON m.category = l.category
        WHERE m.role = 'cash_out' AND NOT coalesce(l.heuristic, false)
          AND l.category <> 'deposit_wallet'
        GROUP BY l.chain, l.address
    ),
    known AS (SELECT DISTINCT chain, address FROM labels WHERE NOT coalesce(heuristic, false)),
    f AS (
        SELECT chain, block, tx_hash, src, dst, asset, kind,
               TRY_CAST(amount_out AS DOUBLE) AS a_out, TRY_CAST(amount_in AS DOUBLE) AS a_in
        FROM ledger
        WHERE kind IN ('native', 'token', 'internal')
          AND src NOT LIKE 'tx:%' AND dst NOT LIKE 'tx:%'
    ),
    outs AS (
        SELECT f.chain, f.src AS d, f.asset, f.block, f.tx_hash, f.a_out, f.dst,
               lower(ex.exchange) AS ex_key, ex.exchange
        FROM f LEFT JOIN ex ON ex.chain = f.chain AND ex.address = f.dst
    ),
    cand AS (
        SELECT chain, d, any_value(exchange) AS exchange
        FROM outs GROUP BY chain, d
        HAVING count(*) = count(ex_key) AND count(DISTINCT ex_key) = 1
    ),
    cand2 AS (
        SELECT c.* FROM cand c
        ANTI JOIN known k ON k.chain = c.chain AND k.address = c.d
    ),
    ins AS (
        SELECT f.chain, f.dst AS d, f.asset, f.block, f.tx_hash, f.a_in, f.src
        FROM f JOIN cand2 c ON c.chain = f.chain AND c.d = f.dst
        WHERE f.a_in > 0
    ),
    c_outs AS (
        SELECT o.* FROM outs o JOIN cand2 c ON c.chain = o.chain AND c.d = o.d
    ),
    -- the first sweep at or after each deposit: a running minimum over the events taken
    -- from the latest back (an ASOF join here would be planned as a nested loop)
    events AS (
        SELECT chain, d, asset, block, 0 AS is_out FROM ins
        UNION ALL
        SELECT chain, d, asset, block, 1 AS is_out FROM c_outs
    ),
    next_out AS (
        SELECT chain, d, asset, block, is_out,
               min(CASE WHEN is_out = 1 THEN block END) OVER (
                   PARTITION BY chain, d, asset ORDER BY block DESC, is_out DESC
                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS sweep_block
        FROM events
    ),
    gaps AS (
        SELECT chain, d, asset, block, sweep_block - block AS gap
        FROM next_out WHERE is_out = 0
    ),
    gas AS (
        SELECT l.chain, l.src AS d, sum(TRY_CAST(l.amount_out AS DOUBLE)) AS gas
        FROM ledger l JOIN cand2 c ON c.chain = l.chain AND c.d = l.src
        WHERE l.kind = 'fee' GROUP BY ALL
    ),
    recv AS (
        SELECT chain, d, asset, sum(a_in) AS received, count(*) AS n_in,
               count(DISTINCT src) AS n_senders
        FROM ins GROUP BY ALL
    ),
    fwd AS (
        SELECT chain, d, asset, sum(a_out) AS forwarded, count(*) AS n_out,
               arg_min(tx_hash, block) AS first_sweep_tx, arg_max(tx_hash, block) AS last_sweep_tx
        FROM c_outs GROUP BY ALL
    ),
    worst_gap AS (
        SELECT chain, d, asset, max(gap) AS max_gap, count(*) - count(gap) AS unforwarded
        FROM gaps GROUP BY ALL
    ),
    per_asset AS (
        SELECT r.chain, r.d, r.asset, r.received, coalesce(w.forwarded, 0) AS forwarded,
               r.n_in, r.n_senders, w.n_out, w.first_sweep_tx, w.last_sweep_tx, g.max_gap, g.unforwarded,
               coalesce(gs.gas, 0) AS gas,
               CASE
                 WHEN w.forwarded IS NULL THEN false
                 WHEN r.asset NOT LIKE '0x%' THEN
                   r.received - w.forwarded >= 0
                   AND r.received - w.forwarded <= {a_max!r} + coalesce(gs.gas, 0)
                 ELSE
                   r.received - w.forwarded >= 0
                   AND r.received - w.forwarded <= {float(p.max_token_keep)!r} * r.received
               END AS amounts_ok
        FROM recv r
        LEFT JOIN fwd w ON w.chain = r.chain AND w.d = r.d AND w.asset = r.asset
        LEFT JOIN worst_gap g ON g.chain = r.chain AND g.d = r.d AND g.asset = r.asset
        LEFT JOIN gas gs ON gs.chain = r.chain AND gs.d = r.d
    ),
    -- outflows of an asset D never received mean missing history: not judged
    stray AS (
        SELECT DISTINCT o.chain, o.d FROM c_outs o
        ANTI JOIN recv r ON r.chain = o.chain AND r.d = o.d AND r.asset = o.asset
    ),
    verdict AS (
        SELECT p.chain, p.d,
               bool_and(p.amounts_ok AND p.unforwarded = 0 AND p.max_gap <= {int(p.max_blocks)}) AS ok,
               to_json(list(struct_pack(
                   asset := p.asset, received := p.received::HUGEINT::VARCHAR,
                   forwarded := p.forwarded::HUGEINT::VARCHAR,
                   share_forwarded := round(p.forwarded / p.received, 6),
                   max_block_gap := p.max_gap, deposits := p.n_in, sweeps := p.n_out,
                   first_sweep_tx := p.first_sweep_tx, last_sweep_tx := p.last_sweep_tx))) AS assets,
               max(p.gas)::HUGEINT::VARCHAR AS gas_paid,
               max(p.n_senders) AS senders
        FROM per_asset p GROUP BY p.chain, p.d
    )
    SELECT v.chain, v.d AS address, c.exchange AS entity, v.assets, v.gas_paid, v.senders
    FROM verdict v JOIN cand2 c ON c.chain = v.chain AND c.d = v.d
    ANTI JOIN stray s ON s.chain = v.chain AND s.d = v.d
    WHERE v.ok
    """


def detect_deposits(
    ws: Workspace,
    params: DepositParams | None = None,
    role_map: dict[str, str] | None = None,
) -> pa.Table:
    """Find deposit addresses, replace the previous heuristic labels, return what was found.

    Columns: chain, address, entity (the exchange), evidence (JSON), senders.
    """
    p = params or DepositParams()
    role_map = role_map or load_role_map()
    ws.con.register("_role_map", pa.table({"category": list(role_map), "role": list(role_map.values())}))
    try:
        with ws.transaction() as con:
            con.execute(_CLUSTERS_DDL)
            found = con.execute(_detect_sql(p)).fetch_arrow_table()
            con.register("_found", found)
            con.execute("DELETE FROM labels WHERE source = ?", [SOURCE])
            con.execute(
                f"""
                INSERT INTO labels (chain, address, entity, category, source, confidence, actor,
                                    heuristic, evidence)
                SELECT chain, address, entity, 'deposit_wallet', '{SOURCE}', {HEURISTIC_CONFIDENCE},
                       NULL, true,
                       json_object('heuristic', 'victor2020_deposit', 'a_max_eth', {float(p.max_fee_eth)!r},
                                   't_max_blocks', {int(p.max_blocks)}, 'gas_paid', gas_paid,
                                   'senders', senders, 'assets', assets::JSON)::VARCHAR
                FROM _found
                """
            )
            con.execute("DELETE FROM deposit_clusters")
            con.execute(
                """
                INSERT INTO deposit_clusters
                SELECT DISTINCT f.chain, f.address, f.entity, l.src
                FROM _found f JOIN ledger l ON l.chain = f.chain AND l.dst = f.address
                WHERE l.kind IN ('native', 'token', 'internal')
                  AND TRY_CAST(l.amount_in AS DOUBLE) > 0
                """
            )
            con.unregister("_found")
    finally:
        ws.con.unregister("_role_map")
    return ws.con.execute(
        f"SELECT chain, address, entity, evidence FROM labels WHERE source = '{SOURCE}' ORDER BY chain, address"
    ).fetch_arrow_table()
