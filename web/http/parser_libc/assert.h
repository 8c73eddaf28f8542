/* <assert.h> for http-parser's freestanding C build (web/http/CMakeLists.txt; never on the C++
 * include path). Its asserts are internal consistency checks of the parser's own state machine;
 * like NDEBUG builds, the kernel compiles them out. */
#ifndef LANTERN_WEB_HTTP_PARSER_LIBC_ASSERT_H
#define LANTERN_WEB_HTTP_PARSER_LIBC_ASSERT_H
#define assert(expression) ((void)0)
#endif
