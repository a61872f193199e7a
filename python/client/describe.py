"""Descriptors as the .proto lines that declare them, for `client describe`: what a person needs
to write a request (field names and types) and to pick a call's shape (streaming kinds).

Names are full (routeguide.v1.Point), so each can be described in turn. Comments are not shown:
generated code, which the server's reflection reads, keeps none.
"""

from __future__ import annotations

from google.protobuf import descriptor

from python.client.server_reflection import Descriptor

_SCALARS = {
    descriptor.FieldDescriptor.TYPE_DOUBLE: "double",
    descriptor.FieldDescriptor.TYPE_FLOAT: "float",
    descriptor.FieldDescriptor.TYPE_INT64: "int64",
    descriptor.FieldDescriptor.TYPE_UINT64: "uint64",
    descriptor.FieldDescriptor.TYPE_INT32: "int32",
    descriptor.FieldDescriptor.TYPE_FIXED64: "fixed64",
    descriptor.FieldDescriptor.TYPE_FIXED32: "fixed32",
    descriptor.FieldDescriptor.TYPE_BOOL: "bool",
    descriptor.FieldDescriptor.TYPE_STRING: "string",
    descriptor.FieldDescriptor.TYPE_BYTES: "bytes",
    descriptor.FieldDescriptor.TYPE_UINT32: "uint32",
    descriptor.FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    descriptor.FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    descriptor.FieldDescriptor.TYPE_SINT32: "sint32",
    descriptor.FieldDescriptor.TYPE_SINT64: "sint64",
}

KINDS = {
    (False, False): "unary",
    (False, True): "server-streaming",
    (True, False): "client-streaming",
    (True, True): "bidirectional",
}


def kind(method: descriptor.MethodDescriptor) -> str:
    return KINDS[method.client_streaming, method.server_streaming]


def rpc_line(method: descriptor.MethodDescriptor) -> str:
    request = ("stream " if method.client_streaming else "") + method.input_type.full_name
    response = ("stream " if method.server_streaming else "") + method.output_type.full_name
    return f"rpc {method.name}({request}) returns ({response});  // {kind(method)}"


def describe(symbol: Descriptor) -> str:
    """The declaration of a service, a method (with its request and response types), a message
    or an enum."""
    if isinstance(symbol, descriptor.ServiceDescriptor):
        rpcs = "".join(f"  {rpc_line(method)}\n" for method in symbol.methods)
        return f"service {symbol.full_name} {{\n{rpcs}}}"
    if isinstance(symbol, descriptor.MethodDescriptor):
        types = [symbol.input_type]
        if symbol.output_type is not symbol.input_type:
            types.append(symbol.output_type)
        return "\n\n".join(
            [f"{symbol.containing_service.full_name}: {rpc_line(symbol)}", *map(_message, types)]
        )
    if isinstance(symbol, descriptor.EnumDescriptor):
        values = "".join(f"  {value.name} = {value.number};\n" for value in symbol.values)
        return f"enum {symbol.full_name} {{\n{values}}}"
    return _message(symbol)


def _message(message: descriptor.Descriptor) -> str:
    fields = "".join(f"  {_field(field)}\n" for field in message.fields)
    return f"message {message.full_name} {{\n{fields}}}"


def _field(field: descriptor.FieldDescriptor) -> str:
    line = f"{_type(field)} {field.name} = {field.number};"
    oneof = field.containing_oneof
    # proto3 `optional` is a oneof of one field too; only a declared oneof is worth a note.
    if oneof is not None and len(oneof.fields) > 1:
        line += f"  // oneof {oneof.name}"
    return line


def _type(field: descriptor.FieldDescriptor) -> str:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key, value = (field.message_type.fields_by_name[name] for name in ("key", "value"))
        return f"map<{_type(key)}, {_type(value)}>"
    if field.message_type is not None:
        name = field.message_type.full_name
    elif field.enum_type is not None:
        name = field.enum_type.full_name
    else:
        name = _SCALARS[field.type]
    return f"repeated {name}" if field.is_repeated else name
