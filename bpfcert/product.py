"""The product a vendor certifies, from the product.yaml it writes (`bpfcert certify --product FILE`): vendor,
product, version, contact and the profiles it claims. spec/report.schema.json's `$defs/product` defines it; the
report carries it as read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bpfcert import spec
from bpfcert.errors import BpfcertError

MAX_BYTES = 64 * 1024  # a product.yaml is a few lines


def safe_yaml(raw: bytes, what: str) -> Any:
    """The YAML document `raw` (UTF-8, safe tags only); BpfcertError, in one line starting with `what`, for bytes
    that are not UTF-8 or not YAML, or that use anchors or aliases (a few lines of them expand to gigabytes once
    validated or walked), or repeat a key (package.load_plain_yaml, as manifests are read). Shared by every
    small YAML file bpfcert reads: product.yaml, expected failures."""
    import yaml

    from bpfcert.package import YamlAlias, load_plain_yaml

    try:
        return load_plain_yaml(raw.decode("utf-8"))
    except YamlAlias:
        raise BpfcertError(f"{what}: YAML aliases are not allowed") from None
    except UnicodeDecodeError:
        raise BpfcertError(f"{what}: not UTF-8") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise BpfcertError(f"{what}: not YAML{at}: {getattr(exc, 'problem', None) or exc}") from None


def load_product(path: str | Path) -> dict[str, Any]:
    """The product described by the YAML file at `path`; BpfcertError, in one line, for a file that is unreadable,
    not YAML, uses anchors or aliases (safe_yaml), breaks the schema or claims an unknown profile."""
    from bpfcert import json_schema
    from bpfcert.pack import read_regular_file

    path = Path(path)
    try:
        raw = read_regular_file(path, MAX_BYTES)  # a regular file only: a FIFO would block certify
    except BpfcertError as exc:
        raise BpfcertError(str(exc).replace(str(path), f"the product file {path}", 1)) from None
    data = safe_yaml(raw, f"product file {path}")
    schema = spec.schema("report")
    error = next(json_schema.validator(schema, "product")(data), None)
    if error is not None:
        where = "".join(f"[{k!r}]" if isinstance(k, str) else f"[{k}]" for k in error.instance_path)
        raise BpfcertError(f"product file {path}: {'$' + where + ': ' if where else ''}{error.message}")
    unknown = [p for p in data["profiles"] if p not in spec.profiles()]
    if unknown:
        raise BpfcertError(f"product file {path}: unknown profile(s) {', '.join(unknown)} "
                           f"(known: {', '.join(spec.profiles())})")
    product: dict[str, Any] = data
    return product
