"""GraphSense TagPack YAML of what an investigator already knows (REFERENCE.md section 5).

Pack level: title, creator, description, is_public; each tag: label, source, currency,
network, confidence, category, address (+ actor for the perpetrator). Deposit addresses are
deliberately absent: finding them is the detector's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Tag:
    address: str
    label: str
    category: str
    currency: str = "ETH"
    network: str = "ethereum"
    actor: str | None = None
    confidence: str = "ownership"


def tagpack(tags: list[Tag], title: str, source: str) -> dict:
    out = []
    for t in tags:
        d = {
            "label": t.label,
            "address": t.address,
            "source": source,
            "currency": t.currency,
            "network": t.network,
            "confidence": t.confidence,
            "category": t.category,
        }
        if t.actor:
            d["actor"] = t.actor
        out.append(d)
    return {
        "title": title,
        "creator": "heisttrace simulator",
        "description": "Known entities of a simulated theft (no exchange deposit addresses).",
        "is_public": True,
        "tags": out,
    }


def write_tagpack(path: Path, tags: list[Tag], title: str, source: str) -> None:
    path.write_text(yaml.safe_dump(tagpack(tags, title, source), sort_keys=False, allow_unicode=True))
