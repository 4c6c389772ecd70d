"""The local web app: server-rendered pages (forms generated from the scenario schema) and a JSON API.

``create_app()`` builds the FastAPI application; ``fivelayer serve`` runs it with uvicorn on 127.0.0.1.
Every asset (plotly.js included) is served by the app itself; nothing is fetched from elsewhere. Bad input
answers 4xx with a message for people (next to the form field on pages), never a traceback; request bodies
are limited in size and runs in time.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Any, Literal

import jinja2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import fivelayer
from fivelayer.catalog import CatalogSet, default_catalog, record_to_dict, resolve_kind
from fivelayer.core.errors import CatalogError, FivelayerError, UnknownIdError
from fivelayer.core.units import to_si
from fivelayer.interfaces.report.charts import stack_charts
from fivelayer.interfaces.report.html import APPLICATION_COLUMNS, DEPLOYMENT_COLUMNS, figures_json, plotly_js
from fivelayer.interfaces.report.tables import fmt, html_table
from fivelayer.interfaces.web.forms import FormField, apply_form, error_fields, scenario_fields
from fivelayer.interfaces.web.runner import (
    Runner,
    RunTimeout,
    default_scenario_text,
    jsonable,
    parse_scenario,
    parse_scenario_data,
    result_csv,
)

__all__ = ["MAX_BODY_BYTES", "RUN_TIMEOUT_S", "create_app"]

#: Largest request body accepted (bytes). A scenario file is a few kB; 256 KiB leaves room for big ones.
MAX_BODY_BYTES = 256 * 1024
#: Longest a plan / yield / predict run may take before the app answers 503 (seconds).
RUN_TIMEOUT_S = 60.0
#: Totals shown first on the page, with their ids for tests and scripts.
KEY_TOTALS = (
    "accelerators",
    "facility_power_mw",
    "capex_usd",
    "annual_cost_usd",
    "usd_per_million_tokens",
    "tokens_per_s",
    "co2_t_per_year",
    "unserved_demand_fraction",
)


# --- request bodies ------------------------------------------------------------------------------------


class ScenarioRequest(BaseModel):
    """A scenario as YAML text or as a mapping (quantities with units, as in files); neither: the default."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    scenario_yaml: str | None = Field(default=None, description="the scenario file's text")
    scenario: dict[str, Any] | None = Field(default=None, description="the scenario as a mapping")


class YieldRequest(ScenarioRequest):
    budget: str | None = Field(default=None, description="capex budget with its unit, e.g. '2e9 USD'")


class PredictRequest(BaseModel):
    """The options of ``fivelayer predict inference``, with bounds."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    accelerator: str = Field(max_length=200, description="catalog accelerator id or alias")
    count: int = Field(default=8, ge=1, le=1_000_000, description="number of accelerators")
    model: str = Field(max_length=200, description="catalog model id or Hugging Face name")
    precision: str = Field(default="fp8", max_length=20)
    input_tokens: int = Field(default=1024, ge=1, le=10_000_000)
    output_tokens: int = Field(default=256, ge=1, le=10_000_000)
    mode: Literal["offline", "server", "fixed-batch"] = "offline"
    batch_size: int | None = Field(default=None, ge=1, le=1_000_000)
    tp: int | None = Field(default=None, ge=1, le=65_536)
    pp: int | None = Field(default=None, ge=1, le=65_536)
    ep: int | None = Field(default=None, ge=1, le=65_536)
    ttft_slo: float | None = Field(default=None, gt=0, le=3600)
    tpot_slo: float | None = Field(default=None, gt=0, le=3600)


# --- body size limit -----------------------------------------------------------------------------------


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Answer 413 to a request whose body exceeds ``limit`` bytes (by Content-Length or as it streams)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"error": f"request body too large: the limit is {self.limit:,} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.limit
            except ValueError:
                too_big = True
            if too_big:
                await self._reject(send)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except _TooLarge:
            if not started:
                await self._reject(send)


# --- pages -----------------------------------------------------------------------------------------------


@cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fivelayer.interfaces.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = fmt
    return env


def _static(name: str) -> bytes:
    return resources.files("fivelayer.interfaces.web").joinpath("static").joinpath(name).read_bytes()


def _json_response(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(jsonable(data), status_code=status)


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _predict_fields(values: dict[str, str], catalog: CatalogSet) -> list[FormField]:
    """The predict form, generated from :class:`PredictRequest`'s fields."""
    out = []
    for name, info in PredictRequest.model_fields.items():
        if name in ("tp", "pp", "ep", "ttft_slo", "tpot_slo"):
            continue
        value = values.get(name, "" if info.default is None else str(info.default))
        label = name.replace("_", " ")
        help_text = info.description or ""
        if name == "accelerator":
            choices = [("", a.id, f"{a.id} ({a.name})") for a in catalog.accelerators]
            out.append(FormField(name, label, "select", value, help_text, choices))
        elif name == "model":
            choices = [
                ("", m.id, f"{m.id} ({m.name})") for m in catalog.models if getattr(m, "modality", "llm") == "llm"
            ]
            out.append(FormField(name, label, "select", value, help_text, choices))
        elif name == "mode":
            out.append(
                FormField(
                    name, label, "select", value, help_text, [("", m, m) for m in ("offline", "server", "fixed-batch")]
                )
            )
        elif name == "precision":
            out.append(
                FormField(
                    name,
                    label,
                    "select",
                    value,
                    help_text,
                    [("", p, p) for p in ("fp8", "fp4", "bf16", "fp16", "int8", "int4")],
                )
            )
        else:
            low = high = None
            for m in info.metadata:
                low = getattr(m, "ge", low)
                high = getattr(m, "le", high)
            out.append(FormField(name, label, "number", value, help_text, minimum=low, maximum=high))
    return out


def create_app(
    *, max_body_bytes: int = MAX_BODY_BYTES, run_timeout_s: float = RUN_TIMEOUT_S, catalog: CatalogSet | None = None
) -> FastAPI:
    """The app. ``max_body_bytes`` and ``run_timeout_s`` bound request size and run time."""
    cat = catalog or default_catalog()
    runner = Runner(timeout_s=run_timeout_s)
    app = FastAPI(
        title="fivelayer",
        version=fivelayer.__version__,
        description="Plan, yield and predict through the five-layer AI stack. Every number carries its source.",
        docs_url=None,  # Swagger UI loads its assets from a CDN; the OpenAPI document is served instead
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.add_middleware(BodyLimit, limit=max_body_bytes)

    # --- errors -----------------------------------------------------------------------------------------

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = next(e for e in errors if e.get("type") == "json_invalid")
            reason = (detail.get("ctx") or {}).get("error", "")
            return _error(400, f"the request body is not valid JSON{': ' + str(reason) if reason else ''}")
        problems = []
        for e in errors:
            loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            problems.append({"field": loc, "message": str(e.get("msg", "invalid"))})
        text = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems)
        return _error(422, f"invalid request: {text}", fields=problems)

    @app.exception_handler(UnknownIdError)
    async def _unknown(request: Request, exc: UnknownIdError) -> JSONResponse:
        status = 404 if request.method == "GET" else 422
        return _error(status, str(exc), suggestions=exc.suggestions)

    @app.exception_handler(RunTimeout)
    async def _timeout(request: Request, exc: RunTimeout) -> JSONResponse:
        return _error(503, str(exc))

    @app.exception_handler(FivelayerError)
    async def _bad_input(request: Request, exc: FivelayerError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"internal error ({type(exc).__name__}); this is a bug in fivelayer, please report it")

    # --- engine calls ------------------------------------------------------------------------------------

    def _scenario_of(body: ScenarioRequest | None) -> tuple[Any, str]:
        if body is None or (body.scenario is None and body.scenario_yaml is None):
            data = parse_scenario_data(default_scenario_text())
        elif body.scenario is not None and body.scenario_yaml is not None:
            raise FivelayerError("give either 'scenario' or 'scenario_yaml', not both")
        elif body.scenario is not None:
            data = body.scenario
        else:
            assert body.scenario_yaml is not None
            data = parse_scenario_data(body.scenario_yaml)
        return parse_scenario(data, cat)

    def _plan(scenario: Any) -> Any:
        from fivelayer.engines.analytic import plan

        return plan(scenario)

    def _yield(scenario: Any, budget_usd: float | None) -> Any:
        from fivelayer.engines.analytic import yield_

        return yield_(scenario, budget_usd)

    def _predict(body: PredictRequest) -> dict[str, Any]:
        from fivelayer.engines.inference import InferenceCase, predict_inference

        case = InferenceCase(**body.model_dump())
        return dict(predict_inference(case, cat).to_dict())

    def _budget(text: str | None) -> float | None:
        if text is None or not text.strip():
            return None
        try:
            value = to_si(text, "USD")
        except FivelayerError as exc:
            raise FivelayerError(f"budget: {exc}") from None
        if not math.isfinite(value) or value <= 0 or value > 1e15:
            raise FivelayerError(f"budget: {text!r} is out of range (give a positive amount up to 1e15 USD)")
        return value

    # --- JSON API ----------------------------------------------------------------------------------------

    @app.post("/api/plan", tags=["api"], summary="Size the stack for a scenario (fivelayer plan)")
    def api_plan(body: ScenarioRequest | None = None) -> JSONResponse:
        scenario, _ = _scenario_of(body)
        return _json_response(runner.run(_plan, scenario).to_dict())

    @app.post("/api/yield", tags=["api"], summary="What a site's power and budget produce (fivelayer yield)")
    def api_yield(body: YieldRequest | None = None) -> JSONResponse:
        scenario, _ = _scenario_of(body)
        return _json_response(runner.run(_yield, scenario, _budget(body.budget if body else None)).to_dict())

    @app.post("/api/predict", tags=["api"], summary="Inference operating point (fivelayer predict inference)")
    def api_predict(body: PredictRequest) -> JSONResponse:
        return _json_response(runner.run(_predict, body))

    @app.post("/api/scenario/check", tags=["api"], summary="Validate a scenario; returns it as YAML")
    def api_check(body: ScenarioRequest | None = None) -> JSONResponse:
        scenario, text = _scenario_of(body)
        return _json_response({"ok": True, "name": scenario.name, "yaml": text})

    @app.post("/api/scenario/explain", tags=["api"], summary="Where every number of a scenario comes from")
    def api_explain(body: ScenarioRequest | None = None) -> JSONResponse:
        scenario, _ = _scenario_of(body)
        return _json_response({"name": scenario.name, "rows": [r.to_dict() for r in scenario.explain()]})

    @app.get("/api/scenarios/default", tags=["api"], summary="The embedded default scenario (YAML text)")
    def api_default() -> JSONResponse:
        return _json_response({"yaml": default_scenario_text()})

    @app.get("/api/catalog/{kind}", tags=["api"], summary="Every record of one kind: id and name")
    def api_catalog(kind: str) -> JSONResponse:
        try:
            name = resolve_kind(kind)
        except CatalogError as exc:
            return _error(404, str(exc))
        return _json_response([{"id": r.id, "name": r.name} for r in cat.kind(name)])

    @app.get("/api/catalog/{kind}/{record_id}", tags=["api"], summary="One record with every number and source")
    def api_record(kind: str, record_id: str) -> JSONResponse:
        try:
            name = resolve_kind(kind)
            record = cat.kind(name).get(record_id)
        except CatalogError as exc:
            return _error(404, str(exc))
        return _json_response(record_to_dict(record))

    # --- static assets -------------------------------------------------------------------------------------

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def static_plotly() -> Response:
        return Response(plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/static/{name}", include_in_schema=False)
    def static_file(name: str) -> Response:
        types = {"app.js": "text/javascript", "app.css": "text/css"}
        if name not in types:
            return PlainTextResponse("not found", status_code=404)
        return Response(_static(name), media_type=types[name])

    # --- pages -------------------------------------------------------------------------------------------

    def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = _templates().get_template(template).render(version=fivelayer.__version__, **context)
        return HTMLResponse(html, status_code=status)

    def _scenario_page(
        text: str,
        op: str = "plan",
        result: Any = None,
        field_errors: dict[str, str] | None = None,
        errors: list[str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        try:
            data = parse_scenario_data(text)
            sections = scenario_fields(data, cat)
        except FivelayerError as exc:
            sections = []
            errors = [*(errors or []), str(exc)]
        for _, section in sections:
            for f in section:
                f.error = (field_errors or {}).get(f.name, "")
        context: dict[str, Any] = {
            "sections": sections,
            "scenario_yaml": text,
            "op": op,
            "errors": errors or [],
            "result": None,
        }
        if result is not None:
            charts = stack_charts(result)
            context["result"] = {
                "kind": result.kind,
                "key_totals": [(k, k.replace("_", " "), fmt(result.totals.get(k))) for k in KEY_TOTALS],
                "totals": [(k.replace("_", " "), fmt(v)) for k, v in result.totals.items() if k not in KEY_TOTALS],
                "deployments": Markup(html_table(result.deployments, DEPLOYMENT_COLUMNS)),
                "applications": Markup(html_table(result.applications, APPLICATION_COLUMNS)),
                "assumptions": result.assumptions,
                "charts": charts,
                "figures": Markup(figures_json(charts)),
            }
        return _page("index.html.j2", status=status, **context)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return _scenario_page(default_scenario_text())

    @app.post("/", response_class=HTMLResponse, include_in_schema=False)
    async def submit(request: Request) -> Response:
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        text = values.pop("scenario_yaml", "") or default_scenario_text()
        action = values.pop("action", "run")
        op = values.pop("op", "plan")
        if op not in ("plan", "yield"):
            op = "plan"
        if action == "reset":
            return _scenario_page(default_scenario_text(), op)
        try:
            data = parse_scenario_data(text)
        except FivelayerError as exc:
            return _scenario_page(text, op, errors=[str(exc)], status=422)
        field_errors = apply_form(data, values, cat) if action != "load-yaml" else {}
        names = {f.name for _, section in scenario_fields(data, cat) for f in section}
        try:
            if field_errors:
                raise FivelayerError("\n".join("(" + k + "): " + v for k, v in field_errors.items()))
            scenario, new_text = parse_scenario(data, cat)
        except FivelayerError as exc:
            import yaml

            by_field, rest = error_fields(str(exc), names)
            shown = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
            return _scenario_page(shown, op, field_errors={**by_field, **field_errors}, errors=rest, status=422)
        if action == "download-scenario":
            return Response(
                new_text,
                media_type="application/x-yaml",
                headers={"Content-Disposition": 'attachment; filename="scenario.yaml"'},
            )
        try:
            result = runner.run(_plan, scenario) if op == "plan" else runner.run(_yield, scenario, None)
        except FivelayerError as exc:
            by_field, rest = error_fields(str(exc), names)
            return _scenario_page(new_text, op, field_errors=by_field, errors=rest or [str(exc)], status=422)
        if action == "download-json":
            body = json.dumps(jsonable(result.to_dict()), indent=2)
            return Response(
                body,
                media_type="application/json",
                headers={"Content-Disposition": f'attachment; filename="{op}.json"'},
            )
        if action == "download-csv":
            return Response(
                result_csv(jsonable(result.to_dict())),
                media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{op}.csv"'},
            )
        return _scenario_page(new_text, op, result=result)

    @app.get("/predict", response_class=HTMLResponse, include_in_schema=False)
    def predict_page() -> HTMLResponse:
        defaults = {"accelerator": "h200-sxm", "model": "llama-3.1-70b"}
        return _page("predict.html.j2", fields=_predict_fields(defaults, cat), errors=[], result=None)

    @app.post("/predict", response_class=HTMLResponse, include_in_schema=False)
    async def predict_submit(request: Request) -> HTMLResponse:
        form = await request.form()
        values = {k: v.strip() for k, v in form.items() if isinstance(v, str)}
        form_fields = _predict_fields(values, cat)
        payload = {k: v for k, v in values.items() if v != "" and k in PredictRequest.model_fields}
        from pydantic import ValidationError

        try:
            body = PredictRequest.model_validate(payload)
            result = runner.run(_predict, body)
        except ValidationError as exc:
            by_name = {str(e["loc"][0]): str(e["msg"]) for e in exc.errors() if e.get("loc")}
            for f in form_fields:
                f.error = by_name.get(f.name, "")
            return _page("predict.html.j2", status=422, fields=form_fields, errors=[], result=None)
        except FivelayerError as exc:
            message = str(exc)
            for f in form_fields:
                if f.name in message.split(" ")[:3] or (f.name == "accelerator" and "accelerator" in message):
                    f.error = message
            return _page("predict.html.j2", status=422, fields=form_fields, errors=[message], result=None)
        rows = [(k.replace("_", " "), fmt(v)) for k, v in result.items() if k != "assumptions"]
        return _page(
            "predict.html.j2",
            fields=form_fields,
            errors=[],
            result={"rows": rows, "assumptions": result.get("assumptions", [])},
        )

    app.state.runner = runner
    return app
