# The VM-entry guest-state rules (vmx/entry_rules.c), pure: no VMCS behind them.
UNIT_TESTS += entry_rules
entry_rules_SRCS := vmx/entry_rules.c
