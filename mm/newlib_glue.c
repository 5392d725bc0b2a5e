/*
 * The system hooks newlib needs (newlib/libc/include/sys/unistd.h): output
 * goes to the console, the heap grows inside the region mm/mm.c reserved.
 * There are no files; everything else fails cleanly with errno set.
 */
#include <errno.h>
#include <sys/stat.h>
#include "arch/x86/log.h"
#include "arch/x86/percpu.h"
#include "arch/x86/spinlock.h"
#include "mm/mm.h"
#include "arch/x86/panic.h"

#undef errno
extern int errno;

/* newlib is built with MISSING_SYSCALL_NAMES: it calls these plain names. */
struct _reent;
void __malloc_lock(struct _reent *r);
void __malloc_unlock(struct _reent *r);
void *sbrk(long incr);
int write(int fd, const void *buf, size_t len);
int read(int fd, void *buf, size_t len);
int close(int fd);
int fstat(int fd, struct stat *st);
int isatty(int fd);
long lseek(int fd, long off, int whence);
int getpid(void);
int kill(int pid, int sig);
void _exit(int status);

/*
 * newlib is built without thread support, so its own __malloc_lock is empty;
 * these replace it (the linker takes ours before libc.a's) so CPUs can
 * allocate at once. Recursive by owner: newlib may take it again inside
 * (realloc calling malloc).
 */
static spinlock_t malloc_lock;
static u32 malloc_owner = ~0u, malloc_depth;

void __malloc_lock(struct _reent *r)
{
	u32 me = this_cpu_index();

	(void)r;
	if (__atomic_load_n(&malloc_owner, __ATOMIC_RELAXED) != me) {
		spin_lock(&malloc_lock);
		malloc_owner = me;
	}
	malloc_depth++;
}

void __malloc_unlock(struct _reent *r)
{
	(void)r;
	if (--malloc_depth == 0) {
		malloc_owner = ~0u;
		spin_unlock(&malloc_lock);
	}
}

void *sbrk(long incr)
{
	void *p = heap_sbrk(incr);

	if (!p) {
		errno = ENOMEM;
		return (void *)-1;
	}
	return p;
}

int write(int fd, const void *buf, size_t len)
{
	if (fd != 1 && fd != 2) {
		errno = EBADF;
		return -1;
	}
	console_write(buf, len);
	return (int)len;
}

int read(int fd, void *buf, size_t len)
{
	(void)fd, (void)buf, (void)len;
	errno = EBADF;
	return -1;
}

int close(int fd)
{
	(void)fd;
	errno = EBADF;
	return -1;
}

int fstat(int fd, struct stat *st)
{
	(void)fd;
	st->st_mode = S_IFCHR;
	return 0;
}

int isatty(int fd)
{
	return fd <= 2;
}

long lseek(int fd, long off, int whence)
{
	(void)fd, (void)off, (void)whence;
	errno = ESPIPE;
	return -1;
}

int getpid(void)
{
	return 1;
}

int kill(int pid, int sig)
{
	(void)pid, (void)sig;
	errno = EINVAL;
	return -1;
}

void _exit(int status)
{
	panic("newlib called _exit(%d)", status);
}
