// Symbol visibility of the SDK's shared library: everything is hidden except what carries
// IDNODE_SDK_API, so the Boost and OpenSSL code compiled into the library never clashes with a
// consumer's own copies.
#pragma once

#if defined(IDNODE_SDK_BUILDING) && defined(__GNUC__)
#define IDNODE_SDK_API __attribute__((visibility("default")))
#else
#define IDNODE_SDK_API
#endif
