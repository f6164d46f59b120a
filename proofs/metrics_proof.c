/* Translation unit for Frama-C/WP: the metrics core exactly as runtime/metrics.c
 * includes it. proofs/prove.sh proves every function of it; see proofs/README.md. */
#include "../runtime/metrics_core.h"
