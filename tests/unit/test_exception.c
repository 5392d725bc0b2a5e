/*
 * arch/x86/exception.c against SDM Vol. 3A Tables 6-4 and 6-5: every pair of a first
 * (being delivered) and a second exception, and which vectors are faults.
 */
#include "unit.h"
#include "arch/x86/exception.h"

static const u8 contributory[] = { 0, 10, 11, 12, 13 };
static const u8 benign[] = { 1, 2, 3, 4, 5, 6, 7, 9, 16, 17, 18, 19, 20, 21 };

TEST(benign_first_handles_serially)
{
	for (unsigned i = 0; i < sizeof(benign); i++)
		for (unsigned v = 0; v < 32; v++)
			CHECK_EQ(x86_exception_combine(true, benign[i], (u8)v), X86_DELIVER_SECOND);
	/* Interrupts, NMIs and software interrupts are benign, whatever their vector. */
	CHECK_EQ(x86_exception_combine(false, 14, 14), X86_DELIVER_SECOND);
	CHECK_EQ(x86_exception_combine(false, 13, 13), X86_DELIVER_SECOND);
	CHECK_EQ(x86_exception_combine(false, 8, 14), X86_DELIVER_SECOND);
}

TEST(contributory_first)
{
	for (unsigned i = 0; i < sizeof(contributory); i++) {
		for (unsigned j = 0; j < sizeof(contributory); j++)
			CHECK_EQ(x86_exception_combine(true, contributory[i], contributory[j]),
				 X86_DOUBLE_FAULT);
		CHECK_EQ(x86_exception_combine(true, contributory[i], 14), X86_DELIVER_SECOND);
		for (unsigned j = 0; j < sizeof(benign); j++)
			CHECK_EQ(x86_exception_combine(true, contributory[i], benign[j]),
				 X86_DELIVER_SECOND);
	}
}

TEST(page_fault_first)
{
	for (unsigned j = 0; j < sizeof(contributory); j++)
		CHECK_EQ(x86_exception_combine(true, 14, contributory[j]), X86_DOUBLE_FAULT);
	CHECK_EQ(x86_exception_combine(true, 14, 14), X86_DOUBLE_FAULT);
	for (unsigned j = 0; j < sizeof(benign); j++)
		CHECK_EQ(x86_exception_combine(true, 14, benign[j]), X86_DELIVER_SECOND);
}

TEST(double_fault_first)
{
	for (unsigned j = 0; j < sizeof(contributory); j++)
		CHECK_EQ(x86_exception_combine(true, 8, contributory[j]), X86_SHUTDOWN);
	CHECK_EQ(x86_exception_combine(true, 8, 14), X86_SHUTDOWN);
	for (unsigned j = 0; j < sizeof(benign); j++)
		CHECK_EQ(x86_exception_combine(true, 8, benign[j]), X86_DELIVER_SECOND);
}

TEST(faults_and_the_rest)
{
	static const u8 faults[] = { 0, 5, 6, 7, 10, 11, 12, 13, 14, 16, 17, 19, 20, 21 };
	static const u8 others[] = { 1, 2, 3, 4, 8, 18 };

	for (unsigned i = 0; i < sizeof(faults); i++)
		CHECK(x86_exception_is_fault(faults[i]));
	for (unsigned i = 0; i < sizeof(others); i++)
		CHECK(!x86_exception_is_fault(others[i]));
}

UNIT_MAIN()
