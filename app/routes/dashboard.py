"""The live dashboard: one static page that polls the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from app.schemas import ErrorOut

router = APIRouter(tags=["dashboard"])

_PAGE = Path(__file__).resolve().parent.parent / "static" / "dashboard.html"


@router.get(
    "/",
    response_class=HTMLResponse,
    # The page is HTML, but a refusal is JSON as on every route (FastAPI would declare the
    # app-wide 413 with this route's media type).
    responses={413: {"description": "The body is over the size limit",
                     "content": {"application/json": {"schema": ErrorOut.model_json_schema()}}}},
)  # fmt: skip
async def read_dashboard() -> HTMLResponse:
    """Rolling metrics per model with drift marks, throughput and counters, updated live."""
    return HTMLResponse(_PAGE.read_text(encoding="utf-8"))
