/*
 * Fixed-width types of the guest kernels. Same names as the hypervisor's lib/types.h, but
 * u64/s64 are `long long` in both the 32-bit and the 64-bit builds, so "%llx" prints a u64 in
 * either without casts (with uint64_t it would be `long` in one and `long long` in the other).
 */
#ifndef GUEST_TYPES_H
#define GUEST_TYPES_H

#include <stddef.h>
#include <stdbool.h>

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;
typedef short s16;
typedef int s32;
typedef long long s64;

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BIT(n) (1ull << (n))
#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((u64)(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((u64)(a) - 1))
#define PAGE_SIZE 4096ull
#define MIB (1ull << 20)

#define PACKED __attribute__((packed))

#endif
