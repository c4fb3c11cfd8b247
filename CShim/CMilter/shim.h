#ifndef CMILTER_SHIM_H
#define CMILTER_SHIM_H
/* libmilter's public API exactly as Debian's libmilter-dev installs it. */
#include <libmilter/mfapi.h>
#endif
