#ifndef C_LIBFUZZER_H
#define C_LIBFUZZER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's entry point for programs that have a main of their own
/// (SwiftPM gives every executable one): parses libFuzzer's flags from argv
/// and runs `callback` on each input. Provided by -sanitize=fuzzer's runtime.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
