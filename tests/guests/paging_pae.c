/* paging.c in PAE paging (3 levels, PDPTEs loaded with CR3, 2 MiB pages), 32-bit build. */
#define PAGING_TEST_MODE PAGING_PAE
#include "paging.c"
