"""The live dashboard: one static page that polls the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["dashboard"])

_PAGE = Path(__file__).resolve().parent.parent / "static" / "dashboard.html"


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def read_dashboard() -> HTMLResponse:
    """Rolling metrics per model with drift marks, throughput and counters, updated live."""
    return HTMLResponse(_PAGE.read_text(encoding="utf-8"))
