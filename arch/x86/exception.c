/* Exception classes and how two combine (SDM Vol. 3A 6.15): see arch/x86/exception.h. */
#include "arch/x86/exception.h"

enum exception_class { BENIGN, CONTRIBUTORY, PAGE_FAULT, DOUBLE_FAULT };

/* SDM Table 6-4. */
static enum exception_class class_of(u8 vector)
{
	switch (vector) {
	case 0: case 10: case 11: case 12: case 13:
		return CONTRIBUTORY;
	case 14:
		return PAGE_FAULT;
	case X86_VEC_DF:
		return DOUBLE_FAULT;
	}
	return BENIGN;
}

/* SDM Table 6-5. */
enum x86_exception_outcome x86_exception_combine(bool first_is_exception, u8 first, u8 second)
{
	enum exception_class a = first_is_exception ? class_of(first) : BENIGN;
	enum exception_class b = class_of(second);
	bool serious = b == CONTRIBUTORY || b == PAGE_FAULT;

	if (a == DOUBLE_FAULT && serious)
		return X86_SHUTDOWN;
	if ((a == PAGE_FAULT && serious) || (a == CONTRIBUTORY && b == CONTRIBUTORY))
		return X86_DOUBLE_FAULT;
	return X86_DELIVER_SECOND;
}

bool x86_exception_is_fault(u8 vector)
{
	return vector != 1 && vector != 2 && vector != 3 && vector != 4 && vector != X86_VEC_DF &&
	       vector != 18;
}
