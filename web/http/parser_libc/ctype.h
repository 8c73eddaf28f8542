/* <ctype.h> for http-parser's freestanding C build: it includes the header but uses its own
 * character-class macros (IS_ALPHA, LOWER, ...), so nothing is declared here. */
#ifndef LANTERN_WEB_HTTP_PARSER_LIBC_CTYPE_H
#define LANTERN_WEB_HTTP_PARSER_LIBC_CTYPE_H
#endif
