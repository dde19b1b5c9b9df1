// The parts of hiredis 0.14 (Debian's libhiredis-dev) that AffinityRedis uses: the RESP reply reader and the
// command formatter. hiredis's own networking is not used; SwiftNIO does the I/O.
#ifndef AFFINITY_CHIREDIS_SHIM_H
#define AFFINITY_CHIREDIS_SHIM_H

#include <stddef.h>
#include <hiredis/hiredis.h>

/// The reader's error text (the `redisReaderGetError` macro is not visible to Swift).
static inline const char *chiredis_reader_error(const redisReader *reader) {
    return reader->errstr;
}

/// Bytes fed to the reader that it has not turned into replies yet.
static inline size_t chiredis_reader_buffered_bytes(const redisReader *reader) {
    return reader->len - reader->pos;
}

#endif
