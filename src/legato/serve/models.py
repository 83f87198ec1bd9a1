"""Request and response models built from a pipeline's ports.

The request model has one field per input port (its JSON name is the port's name, its type the
port's; a port with a default is optional). A *file port* (typed ``bytes`` or a path) is base64
text in a JSON body, or a file part in a multipart body; a path port's upload is written to a
temporary file whose path the pipeline gets. A type with no JSON schema (a NumPy array, an
arbitrary class) is ``Any`` in the model and coerced by the engine, as ``run`` does.

The response model has one field per output: the fields of a NamedTuple, dataclass or dict
return, or the single output's name (``out`` unless the pipeline names it) for a plain return.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
import warnings
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from legato.component import output_fields
from legato.graph import Graph

_CONFIG = ConfigDict(extra="forbid", ser_json_bytes="base64", val_json_bytes="base64",
                     arbitrary_types_allowed=True)


def is_file_port(annotation: Any) -> bool:
    """True for ``bytes`` and path-typed ports (uploaded as files)."""
    return annotation is bytes or (isinstance(annotation, type) and (
        issubclass(annotation, PurePath) or annotation is os.PathLike))


def is_path_port(annotation: Any) -> bool:
    return isinstance(annotation, type) and (
        issubclass(annotation, PurePath) or annotation is os.PathLike)


def _schema_type(annotation: Any) -> Any:
    """The annotation when pydantic can validate and describe it, else Any."""
    if is_file_port(annotation):
        return bytes
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            TypeAdapter(annotation).json_schema()
    except Exception:
        return Any
    return annotation


def _default(value: Any) -> Any:
    """A port's default, when it has a JSON form (else the field is optional without one)."""
    try:
        TypeAdapter(Any).dump_json(value)
    except Exception:
        return None
    return value


def title(name: str) -> str:
    """A pipeline name as a CamelCase identifier: ``voice_agent`` -> ``VoiceAgent``."""
    words = re.split(r"[^0-9A-Za-z]+", name)
    joined = "".join(word[:1].upper() + word[1:] for word in words if word)
    return joined if joined and not joined[0].isdigit() else f"P{joined}"


@dataclasses.dataclass(frozen=True)
class Ports:
    """The models of one pipeline: ``inputs`` (request), ``outputs`` (response), which inputs
    are files, and how a result becomes the response's mapping."""

    graph: Graph
    inputs: type[BaseModel]
    outputs: type[BaseModel]
    fields: tuple[tuple[str, str], ...]  # (model field, port name)
    files: frozenset[str]  # port names uploaded as files
    paths: frozenset[str]  # file ports the pipeline gets as a path
    output_names: tuple[str, ...]
    named: bool  # the result is a NamedTuple or dataclass (or TypedDict) of the outputs

    def values(self, body: BaseModel) -> dict[str, Any]:
        """The validated request as the item's inputs (unset optional ports left out)."""
        given = body.model_fields_set
        return {port: getattr(body, field) for field, port in self.fields if field in given}

    def answer(self, result: Any) -> bytes:
        """A result as the response's JSON object (NaN and infinity as null)."""
        names = self.output_names
        mapping: Mapping[str, Any]
        if self.named:
            mapping = {name: getattr(result, name) for name in names}
        elif isinstance(result, Mapping) and (len(names) > 1 or (
                names[0] != "out" and list(result) == list(names))):
            mapping = result  # a dict return: {"transcript": ..., "reply": ...}
        else:
            mapping = {names[0]: result}
        model = self.outputs.model_validate(dict(mapping))
        return model.model_dump_json(by_alias=True).encode()


def ports(graph: Graph) -> Ports:
    """Build the request and response models of ``graph``."""
    name = title(graph.name)
    fields: dict[str, Any] = {}
    pairs = []
    for i, port in enumerate(graph.inputs):
        field = f"f{i}"
        pairs.append((field, port.name))
        annotation = _schema_type(port.annotation)
        if port.required:
            fields[field] = (annotation, Field(..., alias=port.name))
            continue
        default = _default(port.default)
        if default is None and annotation is not Any:  # no JSON form: left out when unset
            annotation = annotation | None
        fields[field] = (annotation, Field(default, alias=port.name))
    inputs = create_model(f"{name}Input", __config__=_CONFIG, **cast(Any, fields))
    named_fields = output_fields(graph.output_annotation)
    if named_fields is not None:
        outs = [(field, _schema_type(tp)) for field, tp in named_fields]
    else:
        outs = [(out, _schema_type(graph.source_annotation(source)))
                for out, source in graph.outputs.items()]
    out_fields = {f"o{i}": (tp, Field(..., alias=out)) for i, (out, tp) in enumerate(outs)}
    outputs = create_model(f"{name}Output", __config__=ConfigDict(
        ser_json_bytes="base64", arbitrary_types_allowed=True), **cast(Any, out_fields))
    files = frozenset(port.name for port in graph.inputs if is_file_port(port.annotation))
    paths = frozenset(port.name for port in graph.inputs if is_path_port(port.annotation))
    return Ports(graph=graph, inputs=inputs, outputs=outputs, fields=tuple(pairs), files=files,
                 paths=paths, output_names=tuple(out for out, _ in outs),
                 named=named_fields is not None and not typing.is_typeddict(
                     graph.output_annotation))


def upload_schema(model: type[BaseModel], files: frozenset[str]) -> dict[str, Any]:
    """The multipart form's schema: the JSON body's, with file ports as binary parts."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    props = dict(schema.get("properties", {}))
    for name in files:
        props[name] = {"type": "string", "format": "binary", "title": name}
    schema["properties"] = props
    schema["title"] = f"{schema.get('title', 'Input')}Upload"
    return schema


def write_temporary(data: bytes, suffix: str = "") -> Path:
    """Write an upload to a temporary file (the caller removes it)."""
    import tempfile

    fd, name = tempfile.mkstemp(prefix="legato-upload-", suffix=suffix)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return Path(name)


__all__ = ["Ports", "is_file_port", "ports", "title", "upload_schema", "write_temporary"]
