/*
 * Generic protobuf-c printer: see pbprint.h.
 *
 * Walks a message's field descriptors; a field's value lives at its offset
 * in the unpacked struct, a repeated field's count at its quantifier offset,
 * and an optional scalar's presence flag there too. Addresses and sizes are
 * plain integers in JSON (Python and jq read 64-bit integers exactly); in
 * text, fields whose name suggests an address print in hex.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "infra/pbprint.h"

enum { BYTES_SHOWN = 32 };

static const void *field_ptr(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	return (const char *)msg + f->offset;
}

static size_t field_count(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	const char *base = (const char *)msg;

	switch (f->label) {
	case PROTOBUF_C_LABEL_REPEATED:
		return *(const size_t *)(base + f->quantifier_offset);
	case PROTOBUF_C_LABEL_OPTIONAL:
		if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING)
			return *(void *const *)(base + f->offset) != NULL;
		if (f->quantifier_offset)
			return *(const protobuf_c_boolean *)(base + f->quantifier_offset) ? 1 : 0;
		return 1;
	default:
		return 1;
	}
}

static size_t type_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

/* The i-th value of a field (i is 0 for a singular field). */
static const void *value_ptr(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
			     size_t i)
{
	const void *p = field_ptr(msg, f);

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const char *const *)p + i * type_size(f->type);
	return p;
}

/* Is one of the '_'-separated words of name an address or bit-mask word? */
static bool looks_like_address(const char *name)
{
	static const char *const hints[] = {"start",   "end",	  "addr",    "ip",	"sp",
					    "base",    "brk",	  "ptr",     "mask",	"sigmask",
					    "flags",   "xcr0",	  "xxh3",    "handler", "restorer",
					    "blocked", "pending", "pointer", "head"};
	char word[64];

	for (const char *p = name; *p;) {
		size_t n = strcspn(p, "_");
		snprintf(word, sizeof(word), "%.*s", (int)n, p);
		for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
			if (!strcmp(word, hints[i]))
				return true;
		p += n + (p[n] == '_');
	}
	return false;
}

void pbprint_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(out, "\\%c", *c);
		else if (*c < 0x20 || *c == 0x7f)
			fprintf(out, "\\u%04x", *c);
		else
			fputc(*c, out);
	}
	fputc('"', out);
}

static void print_bytes(FILE *out, const ProtobufCBinaryData *b, bool json)
{
	size_t shown = json || b->len <= BYTES_SHOWN ? b->len : BYTES_SHOWN;

	if (json)
		fputc('"', out);
	for (size_t i = 0; i < shown; i++)
		fprintf(out, "%02x", b->data[i]);
	if (json)
		fputc('"', out);
	else if (shown < b->len)
		fprintf(out, "... (%zu bytes)", b->len);
}

static void print_enum(FILE *out, const ProtobufCFieldDescriptor *f, int v, bool json)
{
	const ProtobufCEnumValue *ev =
	    protobuf_c_enum_descriptor_get_value((const ProtobufCEnumDescriptor *)f->descriptor, v);

	if (ev && json)
		pbprint_json_string(out, ev->name);
	else if (ev)
		fputs(ev->name, out);
	else
		fprintf(out, "%d", v);
}

static void print_unsigned(FILE *out, const ProtobufCFieldDescriptor *f, uint64_t v, bool json)
{
	if (!json && v > 9 && looks_like_address(f->name))
		fprintf(out, "%#" PRIx64, v);
	else
		fprintf(out, "%" PRIu64, v);
}

static void print_scalar(FILE *out, const ProtobufCFieldDescriptor *f, const void *p, bool json)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(out, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		print_unsigned(out, f, *(const uint32_t *)p, json);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(out, "%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		print_unsigned(out, f, *(const uint64_t *)p, json);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		fprintf(out, "%g", *(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		fprintf(out, "%g", *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)p ? "true" : "false", out);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		print_enum(out, f, *(const int *)p, json);
		break;
	case PROTOBUF_C_TYPE_STRING:
		if (json)
			pbprint_json_string(out, *(char *const *)p);
		else
			fprintf(out, "\"%s\"", *(char *const *)p);
		break;
	case PROTOBUF_C_TYPE_BYTES:
		print_bytes(out, p, json);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		break;
	}
}

void pbprint_text(FILE *out, const ProtobufCMessage *msg, int indent)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		size_t n = field_count(msg, f);

		for (size_t j = 0; j < n; j++) {
			const void *p = value_ptr(msg, f, j);
			fprintf(out, "%*s%s", indent * 2, "", f->name);
			if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
				fputs(" {\n", out);
				pbprint_text(out, *(const ProtobufCMessage *const *)p, indent + 1);
				fprintf(out, "%*s}\n", indent * 2, "");
				continue;
			}
			fputs(": ", out);
			print_scalar(out, f, p, false);
			fputc('\n', out);
		}
	}
}

static void json_newline(FILE *out, int indent, int pretty)
{
	if (pretty)
		fprintf(out, "\n%*s", indent * 2, "");
}

static void json_value(FILE *out, const ProtobufCFieldDescriptor *f, const void *p, int indent,
		       int pretty)
{
	if (f->type == PROTOBUF_C_TYPE_MESSAGE)
		pbprint_json(out, *(const ProtobufCMessage *const *)p, indent, pretty);
	else
		print_scalar(out, f, p, true);
}

void pbprint_json(FILE *out, const ProtobufCMessage *msg, int indent, int pretty)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	bool first = true;

	fputc('{', out);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		size_t n = field_count(msg, f);

		if (!n && f->label != PROTOBUF_C_LABEL_REPEATED)
			continue;
		fputs(first ? "" : ",", out);
		first = false;
		json_newline(out, indent + 1, pretty);
		fprintf(out, "\"%s\":", f->name);
		if (f->label != PROTOBUF_C_LABEL_REPEATED) {
			json_value(out, f, value_ptr(msg, f, 0), indent + 1, pretty);
			continue;
		}
		fputc('[', out);
		for (size_t j = 0; j < n; j++) {
			fputs(j ? "," : "", out);
			json_value(out, f, value_ptr(msg, f, j), indent + 1, pretty);
		}
		fputc(']', out);
	}
	if (!first)
		json_newline(out, indent, pretty);
	fputc('}', out);
}
