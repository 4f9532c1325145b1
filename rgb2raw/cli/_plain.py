"""Command-line values converted without typer's pydantic adapters, for commands timed whole.

typer builds a pydantic TypeAdapter for every value that is not a flag. Importing pydantic and
building the adapters costs 0.1-0.3 s of CPU on this project's machine, as much as the work
of a small `infer` or `score` run. The values of our commands are plain: Path, int, float,
str or bool (with at most a minimum and maximum), a Literal choice, a list of those, or a value
with its own ``parser=``. `PlainValuesCommand` converts exactly those here, with typer's own
error type (exit 2) and choice matching; any other annotation keeps typer's adapter. If typer's
internals differ from what this expects, nothing changes and typer converts as usual.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import typer

from rgb2raw.cli._app import FastCommand

_PLAIN_TYPES = (Path, int, float, str, bool)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _unwrap_optional(annotation: Any) -> Any:
    """`X` for `X | None` (and `Optional[X]`); the annotation itself otherwise."""
    if isinstance(annotation, (types.UnionType, typing._UnionGenericAlias)):  # type: ignore[attr-defined]
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else None
    return annotation


def _check_range(converted: Any, info: Any, param: Any, ctx: Any) -> Any:
    low, high = getattr(info, "min", None), getattr(info, "max", None)
    if (low is not None and converted < low) or (high is not None and converted > high):
        bounds = " and ".join(text for text in (low is not None and f"x>={low}",
                                                  high is not None and f"x<={high}") if text)
        raise typer.BadParameter(f"{converted} is not in the range {bounds}", ctx=ctx, param=param)
    return converted


def convert_plain(base: type, info: Any, value: Any, param: Any, ctx: Any) -> Any:
    """`value` (a command-line string, or a default) as `base`, within the option's min/max."""
    if isinstance(value, base):
        converted = value
    elif base is bool:  # flags arrive as bools; only an environment value could be text
        if str(value).lower() not in _TRUE + _FALSE:
            raise typer.BadParameter(f"{value!r} is not a valid boolean", ctx=ctx, param=param)
        converted = str(value).lower() in _TRUE
    else:
        try:
            converted = base(value)
        except (TypeError, ValueError):
            raise typer.BadParameter(f"{value!r} is not a valid {base.__name__.lower()}",
                                     ctx=ctx, param=param) from None
    return _check_range(converted, info, param, ctx)


def _leaf_converter(annotation: Any, info: Any) -> Any:
    """A ``(value, param, ctx) -> value`` for one plain leaf annotation, or None."""
    if info.parser is not None:
        parser = info.parser
        return lambda value, param, ctx: parser(value)
    if typing.get_origin(annotation) is typing.Literal:
        from typer._param_types import coerce_cli_choice

        choices = typing.get_args(annotation)

        def choose(value: Any, param: Any, ctx: Any) -> Any:
            try:
                return coerce_cli_choice(value, choices=choices,
                                         case_sensitive=info.case_sensitive, ctx=ctx)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), ctx=ctx, param=param) from None

        return choose
    if annotation in _PLAIN_TYPES:
        return lambda value, param, ctx: convert_plain(annotation, info, value, param, ctx)
    return None


def _converter(annotation: Any, info: Any) -> Any:
    """A converter for `annotation` (optional, maybe a list of a plain leaf), or None."""
    annotation = _unwrap_optional(annotation)
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation) or (None,)
        leaf = _leaf_converter(item, info)
        if leaf is None:
            return None

        def each(value: Any, param: Any, ctx: Any) -> list[Any]:
            values = value if isinstance(value, (list, tuple)) else [value]
            return [leaf(v, param, ctx) for v in values]

        return each
    return _leaf_converter(annotation, info)


def plain_values(command: Any, ctx: Any) -> None:
    """Give this command's plain values a converter that needs no pydantic (module docstring)."""
    try:
        from typer._coercion import PassThroughRuntimeParam
        from typer.core import TyperArgument, TyperOption

        class Plain(PassThroughRuntimeParam):
            convert: Any = None

            def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
                return self.convert(value, param, ctx)

        for param in command.get_params(ctx):
            if not isinstance(param, (TyperOption, TyperArgument)) or param._runtime_param:
                continue
            descriptor = param.type_descriptor
            if descriptor.file_annotation is not None:
                continue
            convert = _converter(descriptor.annotation, descriptor.parameter_info)
            if convert is not None:
                plain = Plain(annotation=descriptor.annotation,
                              parameter_info=descriptor.parameter_info)
                object.__setattr__(plain, "convert", convert)  # a frozen dataclass
                param._runtime_param = plain
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - another typer
        pass


class PlainValuesCommand(FastCommand):
    """A command parsing its values without pydantic (see `plain_values`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        plain_values(self, ctx)
        return super().parse_args(ctx, args)


__all__ = ["PlainValuesCommand", "convert_plain", "plain_values"]
