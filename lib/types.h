/* Fixed-width types shared by hypervisor code and host-compiled MMU core. */
#ifndef LIB_TYPES_H
#define LIB_TYPES_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int16_t s16;
typedef int32_t s32;
typedef int64_t s64;

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BIT(n) (1ull << (n))
#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((u64)(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((u64)(a) - 1))
#define PAGE_SIZE 4096ull
#define PAGE_SHIFT 12
#define LARGE_PAGE_SIZE (2ull << 20)

#define UNUSED __attribute__((unused))
#define NORETURN __attribute__((noreturn))
#define PACKED __attribute__((packed))

/* Little-endian fields of images and tables (x86 host and target alike): byte copies,
 * so the field's alignment does not matter. */
static inline u64 le_load(const void *p, int bytes)
{
	u64 v = 0;

	__builtin_memcpy(&v, p, (size_t)bytes);
	return v;
}

static inline void le_store(void *p, u64 v, int bytes)
{
	__builtin_memcpy(p, &v, (size_t)bytes);
}

#endif
