/* paging.c in 32-bit 2-level paging (4 KiB pages, 4 MiB pages with CR4.PSE). */
#define PAGING_TEST_MODE PAGING_32
#include "paging.c"
