/*
 * Generic protobuf-c message printer, driven by the message descriptors:
 * any image record prints as indented text for a person or as JSON for a
 * program, with no per-message code.
 */
#ifndef CRYO_PBPRINT_H
#define CRYO_PBPRINT_H

#include <protobuf-c/protobuf-c.h>
#include <stdio.h>

/* "name: value" lines, nested messages in braces, indented by indent levels. */
void pbprint_text(FILE *out, const ProtobufCMessage *msg, int indent);
/* One JSON object; pretty puts one field per line, indented by indent levels. */
void pbprint_json(FILE *out, const ProtobufCMessage *msg, int indent, int pretty);
/* A JSON string literal, quoted and escaped. */
void pbprint_json_string(FILE *out, const char *s);

#endif
