# Shared build rules for wkvm's bare-metal guest programs. Include after setting
# GUEST_COMMON to this directory. Output ELFs are committed, so builds must be
# reproducible: no debug info, no build id, no absolute paths.
CROSS    ?= riscv64-unknown-elf-
CC       := $(CROSS)gcc
MARCH    ?= rv64imac_zicsr_zifencei
CFLAGS   := -march=$(MARCH) -mabi=lp64 -mcmodel=medany -nostdlib -nostartfiles \
            -ffreestanding -fno-builtin -fno-pic -fno-common -O2 -Wall -Wextra -Werror \
            -I$(GUEST_COMMON) $(EXTRA_CFLAGS)
LDFLAGS  := -static -T $(GUEST_COMMON)/link.ld -Wl,--build-id=none -Wl,--no-warn-rwx-segments

COMMON_SRCS := $(GUEST_COMMON)/crt0.S $(GUEST_COMMON)/uart.c $(GUEST_COMMON)/printf.c \
               $(GUEST_COMMON)/exit.c
TRAP_SRCS   := $(GUEST_COMMON)/trap.S $(GUEST_COMMON)/trap.c $(GUEST_COMMON)/check.c
COMMON_DEPS := $(wildcard $(GUEST_COMMON)/*.h $(GUEST_COMMON)/*.c $(GUEST_COMMON)/*.S \
               $(GUEST_COMMON)/link.ld $(GUEST_COMMON)/rules.mk)

# $(call guest_elf,OUTPUT,SOURCES[,EXTRA FLAGS])
define guest_elf
$(1): $(2) $$(COMMON_DEPS)
	$$(CC) $$(CFLAGS) $(3) $$(LDFLAGS) -o $$@ $(2)
endef
