"""BigQuery stand-in on 127.0.0.1: the REST endpoints google-cloud-bigquery calls, over DuckDB.

It implements datasets.get, tables.list, tables.get and jobs.query (what `Client.get_dataset`,
`list_tables`, `get_table` and `query_and_wait` send) in BigQuery's JSON wire format, and runs the SQL the pipeline sends for real:
sqlglot translates it from BigQuery to DuckDB, and DuckDB runs it over seeded tables shaped like the
billing export (STRUCT and ARRAY columns, `_PARTITIONTIME`) and like the FOCUS export
(`gcp_billing_export_focus_<BILLING_ACCOUNT>`: FOCUS 1.2 columns, NUMERIC costs, Tags as a repeated
key/value record, Google's x_ columns; or a view of that shape). So tests prove the pipeline's query, not
a canned answer. Errors come back in BigQuery's error JSON (404 notFound, 403 accessDenied, 400
invalidQuery), so the client raises the same exceptions it raises against Google.

`totalBytesProcessed` is an estimate in BigQuery's spirit: rows left after `_PARTITIONTIME` pruning
times a fixed width per referenced column. It is good enough to show that pruning works, not a bill.

Never used for a real account.
"""

from __future__ import annotations

import json
import random
import re
import threading
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from finops_sandbox.server import LoopbackServer
from finops_sandbox.synthetic import Charge, daily_charges

_LABELS = "STRUCT(key VARCHAR, value VARCHAR)[]"
# The billing export's columns (standard table); the detailed table adds `resource`.
EXPORT_COLUMNS: dict[str, str] = {
    "billing_account_id": "VARCHAR",
    "service": "STRUCT(id VARCHAR, description VARCHAR)",
    "sku": "STRUCT(id VARCHAR, description VARCHAR)",
    "usage_start_time": "TIMESTAMPTZ",
    "usage_end_time": "TIMESTAMPTZ",
    "project": f"STRUCT(id VARCHAR, number VARCHAR, name VARCHAR, labels {_LABELS}, ancestry_numbers VARCHAR)",
    "labels": _LABELS,
    "system_labels": _LABELS,
    "location": "STRUCT(location VARCHAR, country VARCHAR, region VARCHAR, zone VARCHAR)",
    "export_time": "TIMESTAMPTZ",
    "cost": "DOUBLE",
    "cost_at_list": "DOUBLE",
    "cost_at_effective_price_default": "DOUBLE",
    "price": ("STRUCT(effective_price DOUBLE, tier_start_amount DOUBLE, unit VARCHAR, pricing_unit_quantity DOUBLE, "
              "list_price DOUBLE, effective_price_default DOUBLE)"),
    "currency": "VARCHAR",
    "currency_conversion_rate": "DOUBLE",
    "usage": "STRUCT(amount DOUBLE, unit VARCHAR, amount_in_pricing_units DOUBLE, pricing_unit VARCHAR)",
    "credits": "STRUCT(name VARCHAR, amount DOUBLE, full_name VARCHAR, id VARCHAR, type VARCHAR)[]",
    "invoice": "STRUCT(month VARCHAR)",
    "cost_type": "VARCHAR",
    "_PARTITIONTIME": "TIMESTAMPTZ",
}
RESOURCE_COLUMN = ("resource", "STRUCT(name VARCHAR, global_name VARCHAR)")

# Approximate stored bytes per row of each column, for totalBytesProcessed. _PARTITIONTIME is free.
_COLUMN_BYTES = {
    "billing_account_id": 22, "service": 40, "sku": 70, "usage_start_time": 8, "usage_end_time": 8,
    "project": 80, "labels": 48, "system_labels": 48, "location": 32, "export_time": 8, "cost": 8,
    "cost_at_list": 8, "cost_at_effective_price_default": 8, "price": 48,
    "currency": 5, "currency_conversion_rate": 8, "usage": 40, "credits": 64, "invoice": 8,
    "cost_type": 9, "resource": 96, "_PARTITIONTIME": 0,
}


class BigQueryError(Exception):
    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message

    def body(self) -> bytes:
        status_names = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}
        return json.dumps({
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
                "status": status_names.get(self.status, "UNKNOWN"),
            }
        }).encode()


def _error_json(status: int, reason: str, message: str) -> bytes:
    return BigQueryError(status, reason, message).body()


_HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Corporate proxy</h1></body></html>"
# answer -> (HTTP status, Content-Type, body), sent instead of whatever the request asked for
RAW_ANSWERS: dict[str, tuple[int, str, bytes]] = {
    "http_500": (500, "application/json; charset=UTF-8", _error_json(500, "backendError", "Backend error. Please try again.")),
    "http_503": (503, "application/json; charset=UTF-8", _error_json(503, "backendError", "The service is currently unavailable.")),
    "html_502": (502, "text/html; charset=UTF-8", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "garbage": (200, "application/json; charset=UTF-8", b"\x1f\x8b\x08\x00garbage{]not json"),
    "empty_body": (200, "application/json; charset=UTF-8", b""),
    "empty_object": (200, "application/json; charset=UTF-8", b"{}"),
    "html": (200, "text/html; charset=UTF-8", _HTML),
    "html_404": (404, "text/html; charset=UTF-8", b"<html><body><h1>404 Not Found</h1><p>nginx</p></body></html>"),
}
RESULT_ANSWERS = ("drop_column", "retype_column", "rows_missing", "no_rows")


@dataclass
class Fault:
    answer: str
    call: str | None = None
    column: str | None = None
    times: int | None = None
    after: int = 0  # let this many matching requests through first


def _call_name(method: str, raw_path: str) -> str:
    path = urlsplit(raw_path).path.removeprefix("/bigquery/v2")
    for pattern, name in ((r"/projects/[^/]+/datasets/[^/]+", "datasets.get"), (r"/projects/[^/]+/datasets/[^/]+/tables", "tables.list"),
                          (r"/projects/[^/]+/datasets/[^/]+/tables/[^/]+", "tables.get"),
                          (r"/projects/[^/]+/queries", "jobs.query"), (r"/projects/[^/]+/queries/[^/]+", "jobs.getQueryResults"),
                          (r"/projects/[^/]+/jobs/[^/]+", "jobs.get")):
        if re.fullmatch(pattern, path):
            return name
    return f"{method} {path}"


def _mangle(result: dict[str, Any], fault: Fault) -> dict[str, Any]:
    """A query answer that looks done but is not what was asked: a column gone or retyped, rows missing."""
    fields = result.get("schema", {}).get("fields", [])
    names = [f["name"] for f in fields]
    if fault.answer in ("rows_missing", "no_rows"):
        result = {k: v for k, v in result.items() if k not in ("rows", "pageToken")}
        if fault.answer == "no_rows":
            result["totalRows"] = "0"
        return result
    column = fault.column or names[-1]
    index = names.index(column)
    if fault.answer == "drop_column":
        result["schema"]["fields"] = fields[:index] + fields[index + 1 :]
        for row in result.get("rows", []):
            row["f"] = row["f"][:index] + row["f"][index + 1 :]
    elif fault.answer == "retype_column":
        fields[index] = {**fields[index], "type": "STRING"}
        for row in result.get("rows", []):
            row["f"][index] = {"v": "n/a"}
    return result


@dataclass
class _Dataset:
    location: str = "US"
    denied: bool = False  # the caller lacks BigQuery Data Viewer on it
    tables: dict[str, str] = field(default_factory=dict)  # BigQuery table name -> DuckDB table name
    views: set[str] = field(default_factory=set)  # which of them are views (tables.list/get say VIEW)


class BigQuerySandbox(LoopbackServer):
    """A threaded HTTP server on 127.0.0.1 (port 0 picks a free one)."""

    def __init__(self, port: int = 0):
        self._db = duckdb.connect()
        self._db.execute("SET TimeZone = 'UTC'")
        self._lock = threading.Lock()
        self.datasets: dict[tuple[str, str], _Dataset] = {}
        self.queries: list[dict[str, Any]] = []  # every query run: sql, parameters, bytes
        self.projects_without_job_user: set[str] = set()  # projects where the caller may not run jobs
        self.faults: list[Fault] = []  # scripted bad answers, see `inject`
        self.calls: dict[str, int] = {}  # requests received per REST method, e.g. {"jobs.query": 3}
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _reply(self, status: int, payload: bytes, content_type: str = "application/json; charset=UTF-8") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = sandbox._take_fault(self.command, self.path)
                if fault is not None and fault.answer in RAW_ANSWERS:
                    status, content_type, payload = RAW_ANSWERS[fault.answer]
                    self._reply(status, payload, content_type)
                    return
                try:
                    result = sandbox._route(self.command, self.path, json.loads(body) if body else {})
                    if fault is not None:
                        result = _mangle(result, fault)
                    self._reply(200, json.dumps(result).encode())
                except BigQueryError as error:
                    self._reply(error.status, error.body())

            do_GET = do_POST = do_DELETE = do_PATCH = _handle

        self._serve(ThreadingHTTPServer(("127.0.0.1", port), Handler), "bigquery-sandbox")

    # --- lifecycle ---------------------------------------------------------------------------------

    def _release(self) -> None:
        self._db.close()


    # --- seeding -----------------------------------------------------------------------------------

    def create_dataset(self, project: str, dataset: str, location: str = "US", denied: bool = False) -> None:
        with self._lock:
            self.datasets.setdefault((project, dataset), _Dataset(location=location)).denied = denied

    def create_export_table(self, project: str, dataset: str, table: str, detailed: bool | None = None) -> None:
        """An empty billing export table; `detailed` defaults to what the table's name says."""
        detailed = table.startswith("gcp_billing_export_resource_v1_") if detailed is None else detailed
        columns = dict(EXPORT_COLUMNS)
        if detailed:
            columns[RESOURCE_COLUMN[0]] = RESOURCE_COLUMN[1]
        internal = f"t_{uuid.uuid4().hex}"
        ddl = ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
        with self._lock:
            self._dataset(project, dataset, for_seeding=True).tables[table] = internal
            self._db.execute(f"CREATE TABLE {internal} ({ddl})")

    def insert_rows(self, project: str, dataset: str, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Append export rows (dicts shaped like the export; money as Decimal or str, stored as FLOAT64)."""
        if not rows:
            return
        with self._lock:
            internal = self._dataset(project, dataset, for_seeding=True).tables[table]
            schema = self._db.sql(f"SELECT * FROM {internal} LIMIT 0").to_arrow_table().schema
            batch = pa.Table.from_pylist(  # noqa: F841 - DuckDB reads the local Arrow table by its name
                [{f.name: _stored(row.get(f.name), f.type) for f in schema} for row in rows], schema=schema)
            self._db.execute(f"INSERT INTO {internal} SELECT * FROM batch").fetchall()

    def _dataset(self, project: str, dataset: str, for_seeding: bool = False) -> _Dataset:
        found = self.datasets.get((project, dataset))
        if found is None:
            if for_seeding:
                raise KeyError(f"create_dataset({project!r}, {dataset!r}) first")
            raise BigQueryError(404, "notFound", f"Not found: Dataset {project}:{dataset}")
        if found.denied and not for_seeding:
            raise BigQueryError(
                403, "accessDenied",
                f"Access Denied: Dataset {project}:{dataset}: Permission bigquery.datasets.get denied on dataset "
                f"{project}:{dataset} (or it may not exist).",
            )
        return found

    def load_focus_parquet(self, project: str, dataset: str, table: str, paths: Sequence[str], *, billing_account_id: str) -> None:
        _load_focus_parquet(self, project, dataset, table, paths, billing_account_id=billing_account_id)

    # --- scripted faults ---------------------------------------------------------------------------

    def inject(self, answer: str, call: str | None = None, *, column: str | None = None, times: int | None = None,
               after: int = 0) -> Fault:
        """Answer `call` ('datasets.get', 'tables.list', 'jobs.query'; None: every request) with `answer`,
        `times` times (None: until `clear_faults`), once `after` matching requests went through. Answers:
        those of RAW_ANSWERS (an HTTP 500 or 503 in BigQuery's error JSON, an HTML 502 from a front end,
        garbage, an empty body, `{}`, an HTML page with 200 or 404), and for jobs.query results:
        'drop_column' / 'retype_column' (`column` missing, or typed STRING with non-numeric values),
        'rows_missing' (done, rows counted, none sent), 'no_rows' (done, zero rows counted and sent).
        """
        if answer not in RAW_ANSWERS and answer not in RESULT_ANSWERS:
            raise ValueError(f"unknown fault answer {answer!r}")
        fault = Fault(answer, call, column, times, after)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def _take_fault(self, method: str, raw_path: str) -> Fault | None:
        call = _call_name(method, raw_path)
        with self._lock:
            self.calls[call] = self.calls.get(call, 0) + 1
            for fault in self.faults:
                if fault.call in (None, call) and (fault.answer in RAW_ANSWERS or call == "jobs.query"):
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    # --- REST --------------------------------------------------------------------------------------

    def _route(self, method: str, raw_path: str, body: dict[str, Any]) -> dict[str, Any]:
        parts = urlsplit(raw_path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path.removeprefix("/bigquery/v2")
        with self._lock:
            if m := re.fullmatch(r"/projects/([^/]+)/datasets/([^/]+)", path):
                if method == "GET":
                    return self._get_dataset(*m.groups())
            if m := re.fullmatch(r"/projects/([^/]+)/datasets/([^/]+)/tables", path):
                if method == "GET":
                    return self._list_tables(*m.groups(), query)
            if m := re.fullmatch(r"/projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)", path):
                if method == "GET":
                    return self._get_table(*m.groups())
            if m := re.fullmatch(r"/projects/([^/]+)/queries", path):
                if method == "POST":
                    return self._query(m.group(1), body)
        raise BigQueryError(400, "invalid", f"The BigQuery stand-in does not implement {method} {parts.path}")

    def _get_dataset(self, project: str, dataset: str) -> dict[str, Any]:
        found = self._dataset(project, dataset)
        return {
            "kind": "bigquery#dataset",
            "id": f"{project}:{dataset}",
            "datasetReference": {"projectId": project, "datasetId": dataset},
            "location": found.location,
        }

    def _list_tables(self, project: str, dataset: str, query: dict[str, str]) -> dict[str, Any]:
        names = sorted(self._dataset(project, dataset).tables)
        start = int(query.get("pageToken") or 0)
        size = int(query.get("maxResults") or 50)
        page = names[start : start + size]
        result: dict[str, Any] = {
            "kind": "bigquery#tableList",
            "totalItems": len(names),
            "tables": [
                {
                    "kind": "bigquery#table",
                    "id": f"{project}:{dataset}.{name}",
                    "tableReference": {"projectId": project, "datasetId": dataset, "tableId": name},
                    "type": "VIEW" if name in self._dataset(project, dataset).views else "TABLE",
                    **({} if name in self._dataset(project, dataset).views else {"timePartitioning": {"type": "DAY"}}),
                }
                for name in page
            ],
        }
        if start + size < len(names):
            result["nextPageToken"] = str(start + size)
        return result

    def _get_table(self, project: str, dataset: str, table: str) -> dict[str, Any]:
        found = self._dataset(project, dataset)
        internal = found.tables.get(table)
        if internal is None:
            raise BigQueryError(404, "notFound", f"Not found: Table {project}:{dataset}.{table}")
        columns = self._db.sql(f"SELECT * FROM {internal} LIMIT 0").to_arrow_table().schema
        rows = self._db.execute(f"SELECT count(*) FROM {internal}").fetchall()[0][0]
        view = table in found.views
        return {
            "kind": "bigquery#table",
            "id": f"{project}:{dataset}.{table}",
            "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
            "type": "VIEW" if view else "TABLE",
            "location": found.location,
            "schema": {"fields": [schema_field(f) for f in columns if f.name != "_PARTITIONTIME"]},
            **({"view": {"query": f"SELECT * FROM `{project}.{dataset}.{table}`", "useLegacySql": False}} if view else
               {"numRows": str(rows), "numBytes": str(rows * 512)}),
        }

    def _query(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        if project in self.projects_without_job_user:
            raise BigQueryError(403, "accessDenied", f"Access Denied: Project {project}: User does not have bigquery.jobs.create permission in project {project}.")  # noqa: E501
        sql = body.get("query", "")
        if body.get("useLegacySql"):
            raise BigQueryError(400, "invalidQuery", "The BigQuery stand-in only runs GoogleSQL (useLegacySql=false)")
        try:
            tree = sqlglot.parse_one(sql, read="bigquery")
        except sqlglot.errors.ParseError as exc:
            raise BigQueryError(400, "invalidQuery", f"Syntax error: {exc}") from None
        default = body.get("defaultDataset") or {}
        scanned = self._bind_tables(tree, project, default)
        for data_type in tree.find_all(exp.DataType):
            if data_type.this == exp.DataType.Type.DECIMAL and not data_type.expressions:
                data_type.replace(exp.DataType.build("DECIMAL(38, 9)"))  # BigQuery NUMERIC
        parameters = {p["name"]: _parameter_value(p["parameterType"], p.get("parameterValue", {})) for p in body.get("queryParameters", [])}
        duck_sql = tree.sql(dialect="duckdb")
        cursor = self._db.cursor()
        try:
            used = {name: value for name, value in parameters.items() if f"${name}" in duck_sql}
            table = cursor.sql(duck_sql, params=used).to_arrow_table()
            bytes_processed = self._bytes_processed(cursor, tree, scanned, parameters)
        except duckdb.Error as exc:
            raise BigQueryError(400, "invalidQuery", f"Query error: {exc}") from None
        finally:
            cursor.close()
        self.queries.append({"sql": sql, "parameters": parameters, "bytes": bytes_processed, "rows": table.num_rows})
        job_id = f"job_{uuid.uuid4().hex}"
        response: dict[str, Any] = {
            "kind": "bigquery#queryResponse",
            "schema": {"fields": [_field(f) for f in table.schema]},
            "jobReference": {"projectId": project, "jobId": job_id, "location": body.get("location") or "US"},
            "totalRows": str(table.num_rows),
            "totalBytesProcessed": str(bytes_processed),
            "jobComplete": True,
            "cacheHit": False,
            "queryId": job_id,
        }
        if table.num_rows:
            kinds = [f["type"] for f in response["schema"]["fields"]]
            response["rows"] = [
                {"f": [{"v": _wire_value(value, kind)} for value, kind in zip(row.values(), kinds)]}
                for row in table.to_pylist()
            ]
        return response

    def _bind_tables(self, tree: exp.Expression, project: str, default: dict[str, str]) -> list[tuple[exp.Table, str]]:
        """Point every export table reference at its DuckDB table; unknown ones fail like BigQuery."""
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        scanned = []
        for table in list(tree.find_all(exp.Table)):
            if not table.db and table.name in ctes:
                continue
            table_project = table.catalog or default.get("projectId") or project
            dataset_name = table.db or default.get("datasetId")
            if not dataset_name:
                raise BigQueryError(400, "invalidQuery", f'Table "{table.name}" must be qualified with a dataset (e.g. dataset.table).')
            dataset = self._dataset(table_project, dataset_name)
            internal = dataset.tables.get(table.name)
            if internal is None:
                raise BigQueryError(404, "notFound", f"Not found: Table {table_project}:{dataset_name}.{table.name} was not found in location {dataset.location}")  # noqa: E501
            alias = table.alias or table.name
            replacement = exp.to_table(internal)
            replacement.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
            table.replace(replacement)
            scanned.append((replacement, internal))
        return scanned

    def _bytes_processed(self, cursor: Any, tree: exp.Expression, scanned: list[tuple[exp.Table, str]], parameters: dict[str, Any]) -> int:
        referenced = {part.lower() for column in tree.find_all(exp.Column) for part in (column.table, column.name) if part}
        partition_filters = []
        for where in tree.find_all(exp.Where):
            for conjunct in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
                columns = list(conjunct.find_all(exp.Column))
                if columns and all(c.name.lower() == "_partitiontime" for c in columns):
                    partition_filters.append(conjunct.sql(dialect="duckdb"))
        total = 0
        for internal in sorted({name for _, name in scanned}):
            names = [c[0] for c in cursor.execute(f"DESCRIBE {internal}").fetchall()]
            width = sum(_COLUMN_BYTES.get(name, 16) for name in names if name.lower() in referenced)
            where = " AND ".join(partition_filters) or "TRUE"
            count_sql = f"SELECT count(*) FROM {internal} WHERE {where}"
            used = {name: value for name, value in parameters.items() if f"${name}" in count_sql}
            total += cursor.execute(count_sql, used).fetchone()[0] * width
        return total


# --- wire format helpers ---------------------------------------------------------------------------

def _stored(value: Any, kind: pa.DataType) -> Any:
    """A seeded value as its column holds it: money as FLOAT64 in the billing export, as NUMERIC (exact) in FOCUS."""
    if value is None:
        return None
    if isinstance(value, Decimal) and pa.types.is_floating(kind):
        return float(value)
    if isinstance(value, dict) and pa.types.is_struct(kind):
        return {kind.field(i).name: _stored(value.get(kind.field(i).name), kind.field(i).type) for i in range(kind.num_fields)}
    if isinstance(value, list) and pa.types.is_list(kind):
        return [_stored(v, kind.value_type) for v in value]
    return value


def _parameter_value(kind: dict[str, Any], value: dict[str, Any]) -> Any:
    if kind.get("type") == "ARRAY":
        return [_parameter_value(kind["arrayType"], item) for item in value.get("arrayValues", [])]
    raw = value.get("value")
    if raw is None:
        return None
    scalar = kind.get("type")
    if scalar == "DATE":
        return date.fromisoformat(raw)
    if scalar == "TIMESTAMP":
        parsed = datetime.fromisoformat(raw.replace(" UTC", "+00:00").replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if scalar in ("INT64", "INTEGER"):
        return int(raw)
    if scalar in ("NUMERIC", "BIGNUMERIC"):
        return Decimal(raw)
    if scalar in ("FLOAT64", "FLOAT"):
        return float(raw)
    if scalar in ("BOOL", "BOOLEAN"):
        return raw.lower() == "true"
    return raw


def _field(arrow_field: pa.Field) -> dict[str, Any]:
    t = arrow_field.type
    if pa.types.is_decimal(t):
        kind = "NUMERIC"
    elif pa.types.is_timestamp(t):
        kind = "TIMESTAMP"
    elif pa.types.is_date(t):
        kind = "DATE"
    elif pa.types.is_floating(t):
        kind = "FLOAT"
    elif pa.types.is_integer(t):
        kind = "INTEGER"
    elif pa.types.is_boolean(t):
        kind = "BOOLEAN"
    else:
        kind = "STRING"
    return {"name": arrow_field.name, "type": kind, "mode": "NULLABLE"}


def schema_field(arrow_field: pa.Field) -> dict[str, Any]:
    """A column as tables.get describes it: legacy type names, RECORD with `fields`, REPEATED for arrays."""
    t, mode = arrow_field.type, "NULLABLE"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        t, mode = t.value_type, "REPEATED"
    if pa.types.is_struct(t):
        return {"name": arrow_field.name, "type": "RECORD", "mode": mode,
                "fields": [schema_field(t.field(i)) for i in range(t.num_fields)]}
    return {**_field(pa.field(arrow_field.name, t)), "mode": mode}


def _wire_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "TIMESTAMP":  # the client asks for useInt64Timestamp: microseconds since the epoch
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
        return str((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)
    if kind == "DATE":
        return value.isoformat()
    if kind == "NUMERIC":
        return format(value, "f")
    if kind == "FLOAT":
        return repr(float(value))
    if kind == "BOOLEAN":
        return "true" if value else "false"
    return str(value)


# --- seeding from synthetic charges ----------------------------------------------------------------

def export_table_name(billing_account_id: str, detailed: bool = True) -> str:
    kind = "resource_v1" if detailed else "v1"
    return f"gcp_billing_export_{kind}_{billing_account_id.replace('-', '_')}"


def _at(day: date, hour: int = 0) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=timezone.utc)


def export_row(
    *,
    billing_account_id: str,
    day: date,
    project_id: str,
    service: str,
    sku: str,
    cost: Decimal,
    currency: str = "USD",
    region: str | None = "us-central1",
    credits: Iterable[tuple[str, str, Decimal]] = (),
    cost_type: str = "regular",
    invoice_month: str | None = None,
    partition_day: date | None = None,
    export_time: datetime | None = None,
    labels: dict[str, str] | None = None,
    resource: str | None = None,
    conversion_rate: Decimal = Decimal(1),
    usage_amount: Decimal | None = None,  # seconds
    project_name: str | None = None,
    zone: str | None = None,
    cost_at_list: Decimal | None = None,  # the cost itself unless the account has negotiated prices
) -> dict[str, Any]:
    """One billing export row. `credits` are (type, name, amount) with negative amounts."""
    service_id = "".join(f"{b:02X}" for b in service.encode()[:3]) + "-ID"
    row = {
        "billing_account_id": billing_account_id,
        "service": {"id": service_id, "description": service},
        "sku": {"id": f"{zlib.crc32(sku.encode()) % 0xFFFF:04X}-{len(sku):04X}", "description": sku},
        "usage_start_time": _at(day),
        "usage_end_time": _at(day) + timedelta(hours=1),
        "project": {"id": project_id, "number": str(zlib.crc32(project_id.encode())), "name": project_name or project_id, "labels": [],
                    "ancestry_numbers": None},
        "labels": [{"key": k, "value": v} for k, v in sorted((labels or {}).items())],
        "system_labels": [],
        "location": {"location": region, "country": None, "region": region, "zone": zone},
        "export_time": export_time or _at(day + timedelta(days=1), 6),
        "cost": cost,
        "cost_at_list": cost if cost_at_list is None else cost_at_list,
        "cost_at_effective_price_default": cost,
        "currency": currency,
        "currency_conversion_rate": conversion_rate,
        "usage": _usage(cost_type, usage_amount),
        "credits": [{"name": n, "amount": a, "full_name": n, "id": f"{t.lower()}-{n.lower().replace(' ', '-')}", "type": t} for t, n, a in credits],
        "invoice": {"month": invoice_month or day.strftime("%Y%m")},
        "cost_type": cost_type,
        "_PARTITIONTIME": _at(partition_day or day),
    }
    if resource is not None:
        row["resource"] = {"name": resource.rsplit("/", 1)[-1], "global_name": resource}
    hours = row["usage"]["amount_in_pricing_units"]
    if hours:  # one tier, priced per hour: the prices that make the row's costs
        row["price"] = {"effective_price": cost / hours, "tier_start_amount": Decimal(0), "unit": "hour", "pricing_unit_quantity": Decimal(1),
                        "list_price": row["cost_at_list"] / hours, "effective_price_default": cost / hours}
    return row


def _usage(cost_type: str, seconds: Decimal | None) -> dict[str, Any]:
    """Usage in seconds, priced per hour; tax, adjustment and rounding rows have no usage."""
    if cost_type != "regular":
        return {"amount": None, "unit": None, "amount_in_pricing_units": None, "pricing_unit": None}
    seconds = Decimal(3600) if seconds is None else seconds
    return {"amount": seconds, "unit": "seconds", "amount_in_pricing_units": seconds / 3600, "pricing_unit": "hour"}


# Demo services -> (API host, the path of one resource under the project, zonal?) as real global names have them.
_RESOURCES: dict[str, tuple[str, str, bool]] = {
    "Compute Engine": ("compute", "zones/{zone}/instances/web-1", True),
    "Cloud Storage": ("storage", "buckets/{project}-assets", False),
    "BigQuery": ("bigquery", "datasets/warehouse", False),
    "Cloud SQL": ("sqladmin", "instances/orders-db", False),
    "Kubernetes Engine": ("container", "locations/{region}/clusters/main", False),
}


def _resource(service: str, project: str, region: str | None) -> tuple[str, str | None]:
    """A demo charge's resource.global_name and location.zone."""
    host, path, zonal = _RESOURCES.get(service, (service.lower().replace(" ", ""), service.lower().replace(" ", "-") + "-1", False))
    zone = f"{region}-a" if zonal and region else None
    return f"//{host}.googleapis.com/projects/{project}/" + path.format(zone=zone, project=project, region=region), zone


def rows_from_charges(charges: Sequence[Charge], billing_account_id: str, detailed: bool = True) -> list[dict[str, Any]]:
    """Synthetic charges -> export rows, with the amortized discount as a credit, 6 decimal places like the export."""
    rows = []
    for charge in charges:
        resource, zone = _resource(charge.service, charge.account_id, charge.region)
        cost = charge.amount.quantize(Decimal("0.000001"))
        discount = (charge.amortized - charge.amount).quantize(Decimal("0.000001"))
        # Compute Engine's discount is a resource-based committed use discount, the others' a sustained use one.
        kind = (("COMMITTED_USAGE_DISCOUNT", "Committed use discount: CPU") if charge.service == "Compute Engine"
                else ("SUSTAINED_USAGE_DISCOUNT", "Sustained usage discount"))
        credits = [(*kind, discount)] if discount else []
        rows.append(export_row(
            billing_account_id=billing_account_id, day=charge.day, project_id=charge.account_id,
            project_name=charge.account_name, service=charge.service, sku=f"{charge.service} usage",
            cost=cost, currency=charge.currency, region=charge.region, credits=credits,
            labels={"team": "platform" if "Compute" in charge.service else "data"},
            resource=resource if detailed else None, zone=zone,
        ))
    return rows


def raw_totals(rows: Iterable[dict[str, Any]], invoice_month: str | None = None) -> dict[str, Decimal]:
    """Net cost (cost + credits) per currency of seeded rows: what a test expects the lake to hold."""
    totals: dict[str, Decimal] = {}
    for row in rows:
        if invoice_month and row["invoice"]["month"] != invoice_month.replace("-", ""):
            continue
        net = Decimal(row["cost"]) + sum((Decimal(c["amount"]) for c in row["credits"]), Decimal(0))
        totals[row["currency"]] = totals.get(row["currency"], Decimal(0)) + net
    return totals


# --- the FOCUS export (gcp_billing_export_focus_<BILLING_ACCOUNT>) ----------------------------------------

_NUMERIC = "DECIMAL(38, 9)"
_FOCUS_TAGS = "STRUCT(key VARCHAR, value VARCHAR, x_inherited BOOLEAN, x_namespace VARCHAR)[]"
# FOCUS 1.2 columns of Google's FOCUS export (NUMERIC money, TIMESTAMP periods, Tags as a repeated key/value
# record) and Google's x_ columns, as the schema reference lists them.
FOCUS_COLUMNS: dict[str, str] = {
    "AvailabilityZone": "VARCHAR", "BilledCost": _NUMERIC, "BillingAccountId": "VARCHAR", "BillingAccountName": "VARCHAR",
    "BillingAccountType": "VARCHAR", "BillingCurrency": "VARCHAR", "BillingPeriodStart": "TIMESTAMPTZ",
    "BillingPeriodEnd": "TIMESTAMPTZ", "ChargeCategory": "VARCHAR", "ChargeClass": "VARCHAR", "ChargeDescription": "VARCHAR",
    "ChargeFrequency": "VARCHAR", "ChargePeriodStart": "TIMESTAMPTZ", "ChargePeriodEnd": "TIMESTAMPTZ",
    "CommitmentDiscountCategory": "VARCHAR", "CommitmentDiscountId": "VARCHAR", "CommitmentDiscountName": "VARCHAR",
    "CommitmentDiscountQuantity": _NUMERIC, "CommitmentDiscountStatus": "VARCHAR", "CommitmentDiscountType": "VARCHAR",
    "CommitmentDiscountUnit": "VARCHAR", "ConsumedQuantity": _NUMERIC, "ConsumedUnit": "VARCHAR", "ContractedCost": _NUMERIC,
    "ContractedUnitPrice": _NUMERIC, "EffectiveCost": _NUMERIC, "InvoiceId": "VARCHAR", "InvoiceIssuerName": "VARCHAR",
    "ListCost": _NUMERIC, "ListUnitPrice": _NUMERIC, "PricingCategory": "VARCHAR", "PricingCurrency": "VARCHAR",
    "PricingCurrencyContractedUnitPrice": _NUMERIC, "PricingCurrencyEffectiveCost": _NUMERIC,
    "PricingCurrencyListUnitPrice": _NUMERIC, "PricingQuantity": _NUMERIC, "PricingUnit": "VARCHAR", "ProviderName": "VARCHAR",
    "PublisherName": "VARCHAR", "RegionId": "VARCHAR", "RegionName": "VARCHAR", "ResourceId": "VARCHAR", "ResourceName": "VARCHAR",
    "ResourceType": "VARCHAR", "ServiceCategory": "VARCHAR", "ServiceName": "VARCHAR", "ServiceSubcategory": "VARCHAR",
    "SkuId": "VARCHAR", "SkuMeter": "VARCHAR", "SkuPriceDetails": "VARCHAR", "SkuPriceId": "VARCHAR", "SubAccountId": "VARCHAR",
    "SubAccountName": "VARCHAR", "SubAccountType": "VARCHAR", "Tags": _FOCUS_TAGS,
    "x_Credits": "STRUCT(Name VARCHAR, Amount DECIMAL(38, 9), FullName VARCHAR, Id VARCHAR, Type VARCHAR)[]",
    "x_CostType": "VARCHAR", "x_CurrencyConversionRate": _NUMERIC, "x_ExportTime": "TIMESTAMPTZ", "x_Location": "VARCHAR",
    "x_ServiceId": "VARCHAR",
}
FOCUS_SERVICES = (  # (ServiceName, ServiceCategory, ServiceSubcategory, SkuMeter, PricingUnit, typical hourly cost)
    ("Compute Engine", "Compute", "Virtual Machines", "N2 Instance Core running in Americas", "hour", Decimal("0.842")),
    ("Cloud Storage", "Storage", "Object Storage", "Standard Storage US Multi-region", "gibibyte month", Decimal("0.215")),
    ("BigQuery", "Databases", "Data Warehouses", "Analysis", "tebibyte", Decimal("0.508")),
    ("Cloud SQL", "Databases", "Relational Databases", "Cloud SQL for PostgreSQL: vCPU", "hour", Decimal("0.391")),
)
FOCUS_REGIONS = (("us-central1", "Iowa"), ("europe-west1", "Belgium"))
FOCUS_PROJECTS = (("retail-web-prod", "Retail Web (prod)"), ("retail-analytics", "Retail Analytics"))


def focus_table_name(billing_account_id: str) -> str:
    return f"gcp_billing_export_focus_{billing_account_id.replace('-', '_')}"


def focus_dataset_name(billing_account_id: str, location: str = "us") -> str:
    return f"gcp_billing_immutable_{billing_account_id.replace('-', '_')}_{location}"


def create_focus_table(sandbox: BigQuerySandbox, project: str, dataset: str, table: str, columns: dict[str, str] | None = None,
                       view: bool = False) -> None:
    """An empty FOCUS export table (or a view of that shape, `view=True`) with `columns` (default FOCUS_COLUMNS)."""
    internal = f"t_{uuid.uuid4().hex}"
    ddl = ", ".join(f'"{name}" {kind}' for name, kind in (columns or FOCUS_COLUMNS).items())
    with sandbox._lock:
        found = sandbox._dataset(project, dataset, for_seeding=True)
        found.tables[table] = internal
        if view:
            found.views.add(table)
        sandbox._db.execute(f"CREATE TABLE {internal} ({ddl})")


def _load_focus_parquet(sandbox: BigQuerySandbox, project: str, dataset: str, table: str, paths: Sequence[str], *,
                        billing_account_id: str) -> None:
    """FOCUS 1.2 Parquet files (AWS-shaped: DOUBLE costs, Tags a map) as a FOCUS export table: NUMERIC costs, Tags as
    key/value records, x_ExportTime a day after the charge, Google's billing account. For the benchmark's volumes."""
    sandbox.create_dataset(project, dataset)
    internal = f"t_{uuid.uuid4().hex}"
    listed = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
    money = [n for n, k in FOCUS_COLUMNS.items() if k == _NUMERIC]
    with sandbox._lock:
        found = sandbox._db.sql(f"DESCRIBE SELECT * FROM read_parquet({listed})").fetchall()
        present = {row[0] for row in found}
        parts = []
        for name, kind in FOCUS_COLUMNS.items():
            if name == "Tags":
                parts.append("list_transform(map_entries(Tags), lambda e: {'key': e.key, 'value': e.value, "
                             "'x_inherited': false, 'x_namespace': NULL::VARCHAR}) AS Tags")
            elif name == "BillingAccountId":
                parts.append(f"'{billing_account_id}' AS BillingAccountId")
            elif name == "x_ExportTime":
                parts.append("ChargePeriodStart + INTERVAL 1 DAY AS x_ExportTime")
            elif name in present:
                parts.append(f'CAST("{name}" AS {kind}) AS "{name}"' if name in money or kind == "TIMESTAMPTZ" else f'"{name}"')
            else:
                parts.append(f'CAST(NULL AS {kind}) AS "{name}"')
        sandbox._db.execute(f"CREATE TABLE {internal} AS SELECT {', '.join(parts)} FROM read_parquet({listed})").fetchall()
        sandbox._dataset(project, dataset, for_seeding=True).tables[table] = internal


def focus_rows(billing_account_id: str, first: date, days: int, *, seed: str = "gcp-focus", hours: Sequence[int] = (1, 9, 17),
               currency: str = "USD", export_delay: timedelta = timedelta(hours=30)) -> list[dict[str, Any]]:
    """FOCUS 1.2 rows as Google's FOCUS export holds them: hourly usage per project, service and region with
    labels as Tags, a committed use discount as its own Credit row, and one Tax row per invoice month.

    BillingPeriodStart is the invoice month (Pacific midnight, as Google's invoices run); usage of a month's
    last day is billed in the next invoice when it is exported after the month ends (late usage)."""
    rng = random.Random(f"{seed}:{billing_account_id}")
    out: list[dict[str, Any]] = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        for hour in hours:
            start = _at(day, hour)
            exported = start + export_delay
            late = exported.month != start.month and day.day == _last_day(day)
            invoice = (date(day.year + day.month // 12, day.month % 12 + 1, 1) if late else day.replace(day=1))
            for project_id, project_name in FOCUS_PROJECTS:
                for service, category, subcategory, meter, unit, typical in FOCUS_SERVICES:
                    for region, region_name in FOCUS_REGIONS:
                        quantity = Decimal(rng.randint(500, 4000)) / 1000
                        list_cost = (typical * quantity).quantize(Decimal("0.000001"))
                        credit = -(list_cost * Decimal(rng.randint(0, 200)) / 1000).quantize(Decimal("0.000001"))
                        tags = [{"key": "team", "value": rng.choice(("checkout", "search", "data")), "x_inherited": False,
                                 "x_namespace": None},
                                {"key": "env", "value": "prod" if project_id.endswith("prod") else "dev", "x_inherited": True,
                                 "x_namespace": None}]
                        base = _focus_base(billing_account_id, invoice, start, currency, exported)
                        usage = {**base, "BilledCost": list_cost, "EffectiveCost": list_cost, "ListCost": list_cost,
                                 "ContractedCost": list_cost, "ChargeCategory": "Usage", "ChargeDescription": meter,
                                 "ChargeFrequency": "Usage-Based", "ConsumedQuantity": quantity, "ConsumedUnit": unit,
                                 "PricingQuantity": quantity, "PricingUnit": unit, "ListUnitPrice": typical,
                                 "ContractedUnitPrice": typical, "PricingCategory": "Standard", "RegionId": region,
                                 "RegionName": region_name, "AvailabilityZone": f"{region}-a",
                                 "ResourceId": f"//{service.lower().replace(' ', '')}.googleapis.com/projects/{project_id}/r-{rng.randrange(3)}",
                                 "ServiceName": service, "ServiceCategory": category, "ServiceSubcategory": subcategory,
                                 "SkuId": f"{zlib.crc32(meter.encode()) % 0xFFFF:04X}-{len(meter):04X}-{zlib.crc32(region.encode()) % 0xFF:02X}",
                                 "SkuMeter": meter, "SubAccountId": project_id, "SubAccountName": project_name,
                                 "SubAccountType": "Project", "Tags": tags, "x_CostType": "regular",
                                 "x_ServiceId": f"{zlib.crc32(service.encode()) % 0xFFFFFF:06X}", "x_Location": region}
                        out.append(usage)
                        if credit:
                            out.append({**usage, "BilledCost": credit, "EffectiveCost": credit, "ListCost": Decimal(0),
                                        "ContractedCost": Decimal(0), "ChargeCategory": "Credit",
                                        "ChargeDescription": "Committed use discount", "ConsumedQuantity": None,
                                        "PricingQuantity": None, "CommitmentDiscountCategory": "Usage",
                                        "CommitmentDiscountType": "Committed Use Discount", "CommitmentDiscountStatus": "Used",
                                        "x_Credits": [{"Name": "Committed use discount", "Amount": credit, "FullName": None,
                                                       "Id": "cud-1", "Type": "COMMITTED_USAGE_DISCOUNT"}]})
        if day.day == 1 or offset == 0:  # the invoice month's tax, exported with its first day
            out.append({**_focus_base(billing_account_id, day.replace(day=1), _at(day), currency, _at(day) + export_delay),
                        "BilledCost": Decimal(rng.randint(400, 900)) / 100, "ChargeCategory": "Tax", "ChargeDescription": "Sales tax",
                        "ChargeFrequency": "Recurring", "ServiceName": "Invoice", "ServiceCategory": "Other",
                        "SubAccountId": FOCUS_PROJECTS[0][0], "SubAccountName": FOCUS_PROJECTS[0][1], "x_CostType": "tax",
                        "Tags": []})
            tax = out[-1]
            tax["EffectiveCost"] = tax["ListCost"] = tax["ContractedCost"] = tax["BilledCost"]
    return out


def _last_day(day: date) -> int:
    return ((day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day


def _focus_base(billing_account_id: str, invoice: date, start: datetime, currency: str, exported: datetime) -> dict[str, Any]:
    pacific = timedelta(hours=8)  # invoice months start at midnight US Pacific time
    next_month = date(invoice.year + invoice.month // 12, invoice.month % 12 + 1, 1)
    return {
        "BillingAccountId": billing_account_id, "BillingAccountName": "Retail billing account", "BillingAccountType": "Billing Account",
        "BillingCurrency": currency, "BillingPeriodStart": _at(invoice) + pacific, "BillingPeriodEnd": _at(next_month) + pacific,
        "ChargePeriodStart": start, "ChargePeriodEnd": start + timedelta(hours=1), "InvoiceIssuerName": "Google Cloud",
        "ProviderName": "Google Cloud", "PublisherName": "Google Cloud", "PricingCurrency": currency,
        "x_CurrencyConversionRate": Decimal(1), "x_ExportTime": exported, "Tags": [],
    }


def focus_totals(rows: Iterable[dict[str, Any]], billing_period: str) -> dict[str, Decimal]:
    """BilledCost per currency of the rows of one invoice month: what a test expects the lake to hold."""
    totals: dict[str, Decimal] = {}
    for row in rows:
        if (row["BillingPeriodStart"].date()).strftime("%Y-%m") == billing_period:
            totals[row["BillingCurrency"]] = totals.get(row["BillingCurrency"], Decimal(0)) + Decimal(row["BilledCost"])
    return totals


DEMO_SERVICES: tuple[tuple[str, str | None, Decimal], ...] = (
    ("Compute Engine", "us-central1", Decimal("182.40")),
    ("Cloud Storage", "us-central1", Decimal("23.15")),
    ("BigQuery", "US", Decimal("41.80")),
    ("Cloud SQL", "europe-west1", Decimal("36.20")),
    ("Kubernetes Engine", "us-central1", Decimal("64.00")),
    ("Networking", None, Decimal("12.75")),
)


class GcpDemo:
    """The demo's GCP side: a billing account whose detailed export holds 60+ days of synthetic
    cost (with credits and monthly tax), one connected hours ago whose export has not created
    its tables yet (PENDING), and one read from its FOCUS export (hourly, tagged, two regions,
    committed use discounts as Credit rows, late usage billed in the next invoice)."""

    BILLING_ACCOUNT = "01A2B3-C4D5E6-F7A8B9"
    NEW_BILLING_ACCOUNT = "0B1C2D-3E4F5A-6B7C8D"
    PROJECT = "finops-demo-billing"
    DATASET = "billing_export"
    NEW_DATASET = "billing_export_new"
    FOCUS_BILLING_ACCOUNT = "0C1D2E-3F4A5B-6C7D8E"

    def __init__(self) -> None:
        self.sandbox: BigQuerySandbox | None = None

    def start(self, port: int) -> None:
        self.sandbox = BigQuerySandbox(port).start()

    def stop(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None

    def accounts(self, now: datetime) -> list[dict[str, Any]]:
        assert self.sandbox is not None, "start() first"

        def account(key: str, name: str, billing: str, dataset: str, connected: timedelta) -> dict[str, Any]:
            return {
                "key": key, "provider": "gcp", "source": "bigquery_export", "name": name,
                "connected_at": (now - connected).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "billing_account_id": billing, "project_id": self.PROJECT, "dataset": dataset,
                "api_endpoint": self.sandbox.url,
            }

        return [
            account("gcp-acme", "Acme Google Cloud", self.BILLING_ACCOUNT, self.DATASET, timedelta(days=120)),
            account("gcp-new-billing", "New GCP billing account", self.NEW_BILLING_ACCOUNT, self.NEW_DATASET, timedelta(hours=6)),
            {**account("gcp-focus-retail", "Retail Google Cloud (FOCUS export)", self.FOCUS_BILLING_ACCOUNT,
                       focus_dataset_name(self.FOCUS_BILLING_ACCOUNT), timedelta(days=90)), "source": "focus"},
        ]

    def environment(self) -> dict[str, str]:
        return {}  # the stand-in takes anonymous requests; real accounts name credentials_env

    def seed(self, config: Any, periods: list[str], today: date) -> None:
        """Synthetic export rows from the first day of the oldest period (at least 62 days back) to yesterday."""
        assert self.sandbox is not None, "start() first"
        first = min([today - timedelta(days=62)] + [date.fromisoformat(f"{p}-01") for p in periods])
        self.sandbox.create_dataset(self.PROJECT, self.NEW_DATASET)  # export enabled, no tables yet
        for account in config.for_source("gcp", "bigquery_export"):
            if account.settings.get("api_endpoint") != self.sandbox.url or account.settings["dataset"] != self.DATASET:
                continue
            billing = account.settings["billing_account_id"]
            project = account.settings.get("dataset_project_id") or account.settings["project_id"]
            table = export_table_name(billing)
            self.sandbox.create_dataset(project, self.DATASET)
            self.sandbox.create_export_table(project, self.DATASET, table)
            charges = daily_charges(
                f"gcp-demo-{account.key}", first, (today - first).days,
                [("acme-web-prod", "Acme Web (prod)"), ("acme-data-lake", "Acme Data Lake")], DEMO_SERVICES,
            )
            rows = rows_from_charges(charges, billing)
            rng = random.Random(account.key)
            for month_start in sorted({c.day.replace(day=1) for c in charges}):
                rows.append(export_row(billing_account_id=billing, day=month_start, project_id="acme-web-prod", service="Invoice",
                                       sku="Tax", cost=Decimal(rng.randint(500, 900)) / 100, cost_type="tax", region=None))
            self.sandbox.insert_rows(project, self.DATASET, table, rows)
        for account in config.for_source("gcp", "focus"):
            if account.settings.get("api_endpoint") != self.sandbox.url:
                continue
            billing, dataset = account.settings["billing_account_id"], account.settings["dataset"]
            project = account.settings.get("dataset_project_id") or account.settings["project_id"]
            self.sandbox.create_dataset(project, dataset)
            create_focus_table(self.sandbox, project, dataset, focus_table_name(billing))
            self.sandbox.insert_rows(project, dataset, focus_table_name(billing), focus_rows(billing, first, (today - first).days))
