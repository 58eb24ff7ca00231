#ifndef GATEHOUSE_CFASTCGI_SHIM_H
#define GATEHOUSE_CFASTCGI_SHIM_H
// libfcgi's request-level API (fcgiapp.h): FCGX_Accept_r and friends. We use the
// reentrant *_r calls so each worker owns one FCGX_Request; FCGX_FPrintF is variadic
// and not importable, so responses go through FCGX_PutStr.
#include <fcgiapp.h>
#endif
