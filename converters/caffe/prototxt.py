"""Text ``.prototxt`` files -> ``NetParameter`` (any format: V0, V1 or V2), parsed strictly as Caffe does.

Every field must be one the schema knows (BVLC Caffe's and the common forks', see
:mod:`converters.caffe.schema`): an unknown field, usually a misspelling that would otherwise give a different
model, is a ConversionError naming the file, the line, the layer, the field and the closest known field::

    deploy.prototxt: line 12: layer 'conv1' (Convolution): unknown field 'strid' in convolution_param; did you
    mean 'stride'?

``allow_unknown_fields=True`` turns each such error into one ``logging`` warning (the same text) and skips the
field with its value (a scalar, a list or a ``{ }`` / ``< >`` block); the rest of the file is read as usual.
Unknown enum values (``pool: MAXX``) stay errors: they are values, not fields. V1 enum layer types that Caffe's
enum lacks (a fork's ``type: ROI_POOLING``) are kept by name, so that the layer can be reported as unsupported.
"""

from __future__ import annotations

import difflib
import logging
import pathlib
import re

from google.protobuf import text_format

import converters.caffe.schema as schema
from converters.errors import ConversionError

log = logging.getLogger(__name__)

# A bare identifier after 'type:' outside comments and quoted strings (V1 enum layer types).
_BARE_TYPE = re.compile(
    r"""(?m)^((?:[^#"'\n]|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')*?(?<![\w.])type\s*:\s*)([A-Za-z_]\w*)""")

# The protobuf text parser's messages for an unknown field and an unknown enum value.
_UNKNOWN_FIELD = re.compile(r'Message type "(?:caffe\.)?([\w.]+)" has no field named "([^"]*)"')
_UNKNOWN_VALUE = re.compile(r'Enum type "(?:caffe\.)?([\w.]+)" has no value named (\S+?)\.?$')

# Tokens of the text format, for the scans below: comments, strings, identifiers/numbers, punctuation.
_TOKEN = re.compile(r"""\s+|(\#[^\n]*)|("(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?)|([-+]?[\w.]+(?:(?<=[eE])[-+][\w.]+)?)
                        |(.)""", re.X)
_OPEN = {"{": "}", "<": ">", "[": "]"}


def _read_bytes(path, what):
    """The bytes of ``path``; ConversionError naming ``what`` (e.g. 'prototxt') if it cannot be read."""
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as exc:
        raise ConversionError(f"cannot read the {what}: {exc.strerror or exc}", path=path) from None


def parse_prototxt(path, *, allow_unknown_fields=False):
    """NetParameter of a text prototxt, parsed strictly (see the module docstring).

    ``allow_unknown_fields``: skip unknown fields with one warning each instead of raising a ConversionError.
    """
    raw = _read_bytes(path, "prototxt")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConversionError(f"not a text prototxt: invalid UTF-8 at line {line}", path=path) from None
    known = set(schema.V1_TYPE_NAMES.values())

    def keep_unknown(match):
        if match.group(2) in known or match.group(2) in ("true", "false"):
            return match.group(0)
        prefix = match.group(1)
        at = prefix.rindex("type")
        return f'{prefix[:at]}{schema.V1_UNKNOWN_TYPE_FIELD}{prefix[at + 4:]}"{match.group(2)}"'

    text = _BARE_TYPE.sub(keep_unknown, text)
    while True:
        net = schema.NetParameter()
        try:
            text_format.Parse(text, net)
            return net
        except text_format.ParseError as exc:
            problem = _unknown_field_problem(exc, text, path)
            if problem is None:
                where = f"line {exc.GetLine()}" if exc.GetLine() else "prototxt"
                reason = str(exc).split(" : ", 1)[-1]
                raise ConversionError(f"syntax error at {where}: {reason}", path=path) from None
            error, offset = problem
            if not allow_unknown_fields or offset is None:
                raise error from None
            log.warning("%s", error)
            blanked = _blank_field(text, offset)
            if blanked == text:  # cannot happen for a field name the parser reported; never loop
                raise error from None
            text = blanked
        except (ValueError, TypeError, RecursionError) as exc:
            raise ConversionError(f"invalid prototxt: {exc}", path=path) from None


# ------------------------------------------------------------------------------------ unknown fields

def _find(kind, type_name):
    """The schema's descriptor of the message or enum ``type_name`` (e.g. 'PoolingParameter.PoolMethod')."""
    pool = schema.NetParameter.DESCRIPTOR.file.pool
    try:
        return getattr(pool, f"Find{kind}TypeByName")(f"{schema.PACKAGE}.{type_name}")
    except KeyError:
        return None


def _closest(name, candidates):
    match = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


def _unknown_field_problem(exc, text, path):
    """(ConversionError, offset of the field name or None) for an unknown field or enum value, else None."""
    message = str(exc)
    field_match = _UNKNOWN_FIELD.search(message)
    value_match = None if field_match else _UNKNOWN_VALUE.search(message)
    if field_match is None and value_match is None:
        return None
    line, column = exc.GetLine(), exc.GetColumn()
    offset = _offset(text, line, column) if line and column else None
    layer, layer_type, blocks, path_names = _context(text, offset) if offset is not None else (None, None, [], [])
    where = ".".join(blocks) if blocks else ("the layer" if layer is not None else "the net")
    if field_match:
        type_name, name = field_match.groups()
        descriptor = _find("Message", type_name)
        fields = set(descriptor.fields_by_name) - {schema.V1_UNKNOWN_TYPE_FIELD} if descriptor else set()
        closest = _closest(name, fields)
        reason = f"unknown field '{name}' in {where}"
        outer = [block for block in _block_types(path_names)[:-1] if name in block.fields_by_name]
        if closest:
            reason += f"; did you mean '{closest}'?"
        elif outer:
            reason += f" (a field of {outer[-1].name}: is a '}}' missing before it?)"
        elif descriptor is not None:
            owners = sorted(field.name for field in descriptor.fields
                            if field.message_type is not None and name in field.message_type.fields_by_name
                            and field.name.endswith("_param"))
            if owners:
                reason += f" ('{name}' is a field of {', '.join(owners[:3])}{'...' if len(owners) > 3 else ''})"
    else:
        type_name, value = value_match.groups()
        enum_type = _find("Enum", type_name)
        enum = [value.name for value in enum_type.values] if enum_type is not None else []
        closest = _closest(value, enum)
        field_name = re.search(r"(\w+)\s*:?\s*$", text[:offset]) if offset is not None else None
        of = f" of '{field_name.group(1)}'" if field_name else ""
        reason = f"unknown value {value}{of} in {where}"
        reason += f"; did you mean {closest}?" if closest else (f" (one of {', '.join(enum)})" if enum else "")
        offset = None  # a value is not a field: never skipped
    error = ConversionError(reason, path=path, line=line or None, layer=layer, layer_type=layer_type)
    return error, offset


def _offset(text, line, column):
    """Character offset of the 1-based (line, column) the protobuf text tokenizer reports."""
    lines = text.split("\n")
    if line > len(lines):
        return None
    return sum(len(part) + 1 for part in lines[:line - 1]) + column - 1


def _tokens(text, start=0):
    """(kind, value, start, end) for each token from ``start``: 'word', 'string' or 'punct' (no comments)."""
    for match in _TOKEN.finditer(text, start):
        if match.group(2) is not None:
            yield "string", match.group(2), match.start(), match.end()
        elif match.group(3) is not None:
            yield "word", match.group(3), match.start(), match.end()
        elif match.group(4) is not None:
            yield "punct", match.group(4), match.start(), match.end()


def _context(text, offset):
    """(layer name, layer type, names of the blocks inside the layer (or the net) around ``offset``, names of
    all the blocks around it)."""
    tokens = list(_tokens(text))
    stack = []          # [(field name, index of its opening token, the bracket)]
    pending = None      # the field name a '{', '<' or '[' that follows opens
    for index, (kind, value, start, _) in enumerate(tokens):
        if start >= offset:
            break
        if kind == "word" and (index + 1 < len(tokens) and tokens[index + 1][1] in (":", "{", "<")):
            pending = value
        elif kind == "punct" and value in _OPEN:
            name = pending if pending is not None else (stack[-1][0] if stack and stack[-1][2] == "[" else "?")
            stack.append((name, index, value))
            pending = None
        elif kind == "punct" and value in ("}", ">", "]") and stack:
            stack.pop()
            pending = None
        elif kind != "word" and value != ":":
            pending = None
    stack = [(name, index) for name, index, bracket in stack if bracket != "["]
    if not stack or stack[0][0] not in ("layer", "layers"):
        return None, None, [name for name, _ in stack], [name for name, _ in stack]
    scalars, children = _block_contents(tokens, stack[0][1])
    inner = [name for name, _ in stack[1:]]
    if stack[0][0] == "layers" and "layer" in children:  # V0: layers { layer { name type ... } bottom top }
        scalars = _block_contents(tokens, children["layer"])[0]
        if inner[:1] == ["layer"]:
            inner = inner[1:]
    layer_type = scalars.get("type") or scalars.get(schema.V1_UNKNOWN_TYPE_FIELD)
    return scalars.get("name", "?"), layer_type, inner, [name for name, _ in stack]


def _block_types(names):
    """Descriptors of NetParameter and of the messages of the nested blocks ``names`` (as far as known)."""
    types = [schema.NetParameter.DESCRIPTOR]
    for name in names:
        field = types[-1].fields_by_name.get(name)
        if field is None or field.message_type is None:
            break
        types.append(field.message_type)
    return types


def _block_contents(tokens, open_index):
    """({field: scalar value}, {field: index of its opening token}) of the block opened at ``open_index``."""
    scalars, children = {}, {}
    depth = 0
    index = open_index + 1
    while index < len(tokens):
        kind, value, _, _ = tokens[index]
        if kind == "punct" and value in _OPEN:
            depth += 1
        elif kind == "punct" and value in ("}", ">", "]"):
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and kind == "word" and index + 1 < len(tokens):
            following = tokens[index + 1][1]
            if following == ":" and index + 2 < len(tokens) and tokens[index + 2][0] != "punct":
                literal = tokens[index + 2]
                scalars.setdefault(value, literal[1][1:-1] if literal[0] == "string" else literal[1])
            elif following in ("{", "<") or (following == ":" and index + 2 < len(tokens)
                                               and tokens[index + 2][1] in ("{", "<")):
                children.setdefault(value, index + 1 if following != ":" else index + 2)
        index += 1
    return scalars, children


def _blank_field(text, offset):
    """``text`` with the field whose name starts at ``offset`` and its value replaced by spaces (newlines
    kept, so that line numbers stay): a scalar, adjacent strings, a [list] or a { } / < > block."""
    tokens = _tokens(text, offset)
    end = offset
    state = "name"
    depth = []
    for kind, value, _, token_end in tokens:
        if depth:
            if kind == "punct" and value in _OPEN:
                depth.append(_OPEN[value])
            elif kind == "punct" and value == depth[-1]:
                depth.pop()
            end = token_end
            if not depth:
                state = "after"
            continue
        if state == "name":
            end, state = token_end, "colon"
        elif state == "colon" and value == ":":
            end, state = token_end, "value"
        elif state in ("colon", "value") and kind == "punct" and value in _OPEN:
            depth.append(_OPEN[value])
            end = token_end
        elif state == "value" and kind in ("word", "string"):
            end, state = token_end, ("strings" if kind == "string" else "after")
        elif state == "strings" and kind == "string":
            end = token_end
        elif state in ("after", "strings") and value in (",", ";"):
            end = token_end
            break
        else:
            break
    return text[:offset] + re.sub(r"[^\n]", " ", text[offset:end]) + text[end:]
