# SPDX-License-Identifier: MIT
#
# The build rules, included by the top-level Makefile: one C compile rule,
# one C++ compile rule and one link rule for every directory in
# $(BUILD_DIRS), in the style of the kernel's tools/build. A directory's
# Build file only says what it builds and with which flags. Its variables
# are named after the directory, / turned into - (selftests/cxx:
# selftests-cxx-y):
#
#   <d>-y          in $(PROG_DIRS), the programs to build, $(O)/<d>/<prog>;
#                  in $(OBJ_DIRS), the objects to build, $(O)/<d>/<obj>.o
#                  (lib/'s objects the Makefile builds itself, twice)
#   <prog>-y       a program's objects, <d>/<obj>.c or <d>/<obj>.cpp ->
#                  $(O)/<d>/<obj>.o (default: <prog>.o); a program with a
#                  C++ object is linked by <d>-cxx
#   <prog>-cflags, <prog>-cxxflags, <prog>-ldlibs
#                  extra flags for a program's objects, extra libraries
#                  for it: recursive (=), so that a $(shell pkg-config ...)
#                  runs only when it is built
#   <d>-cc, <d>-cxx, <d>-cflags, <d>-cxxflags, <d>-ldflags
#                  the directory's compilers and flags (default: $(CC),
#                  $(CXX), $(ALL_CFLAGS), $(ALL_CXXFLAGS), $(ALL_LDFLAGS))
#   <d>-libs       what its programs link with (default: $(STATIC_LIB)
#                  $(LIBS)); the files among them are prerequisites
#   <prog>-libs    what one program links with instead of <d>-libs (for
#                  a directory whose programs link different libraries)
#   <d>-lib-y      library objects (lib/<obj>.c) compiled again, with the
#                  directory's compiler and flags, into $(O)/<d>/lib/ and
#                  linked into each of its programs
#   <d>-clean-files  more files and directories `make <d>-clean` removes
#
# It sets <d>-progs and <d>-objs, the files the rules make, and ALL_OBJS.

# Quiet output: "  CC      staticobjs/lib/loop.o". V=1 prints the commands
# instead, make -s prints nothing. Paths are shown relative to $(O).
ifeq ($(V),1)
  Q :=
  quiet_print =
else ifneq ($(silent),)
  Q := @
  quiet_print =
else
  Q := @
  quiet_print = printf '  %-7s %s\n' '$(1)' '$(patsubst $(O)/%,%,$(2))';
endif
# $(call msg,TAG,path) starts a recipe line: prints the tag, hides the command.
msg = $(Q)$(call quiet_print,$(1),$(2))

# Ends a recipe that wrote $@.tmp: keeps $@, and its time, if nothing
# changed, else runs $(1) and moves the new file in.
update_file = if cmp -s $@.tmp $@; then rm -f $@.tmp; else $(1) mv -f $@.tmp $@; fi

# The variable prefix of directory $(1).
vp = $(subst /,-,$(1))

$(foreach d,$(call vp,$(BUILD_DIRS)),$(eval $(d)-y :=) $(eval $(d)-lib-y :=) \
	$(eval $(d)-cc = $$(CC)) $(eval $(d)-cxx = $$(CXX)) \
	$(eval $(d)-cflags = $$(ALL_CFLAGS)) \
	$(eval $(d)-cxxflags = $$(ALL_CXXFLAGS)) \
	$(eval $(d)-ldflags = $$(ALL_LDFLAGS)) \
	$(eval $(d)-libs = $$(STATIC_LIB) $$(LIBS)))
include $(addsuffix /Build,$(BUILD_DIRS))

prog_objs = $(addprefix $(O)/$(1)/,$(or $($(2)-y),$(2).o))
lib_objs = $(addprefix $(O)/$(1)/lib/,$($(call vp,$(1))-lib-y))
# $(call prog_libs,DIR,PROG): what PROG links with.
prog_libs = $(if $(filter undefined,$(origin $(2)-libs)),$($(call vp,$(1))-libs),$($(2)-libs))
# $(call cxx_objs,SRC,OUT,OBJS): those of OBJS that have a SRC/<obj>.cpp.
cxx_objs = $(strip $(foreach o,$(3),$(if $(wildcard $(patsubst $(2)/%.o,$(1)/%.cpp,$(o))),$(o))))

$(foreach d,$(PROG_DIRS),$(eval $(call vp,$(d))-progs := $(addprefix $(O)/$(d)/,$($(call vp,$(d))-y))) \
	$(eval $(call vp,$(d))-objs := $(sort $(foreach p,$($(call vp,$(d))-y),$(call prog_objs,$(d),$(p))))))
$(foreach d,$(OBJ_DIRS),$(eval $(d)-objs := $(addprefix $(O)/$(d)/,$($(d)-y))))

# $(call compile,DIR,SRC,OUT,OBJS[,FLAGS]): OUT/<obj>.o from SRC/<obj>.c or
# SRC/<obj>.cpp for each object in OBJS, with DIR's compilers and flags
# (and FLAGS), and -MMD dependencies. The objects also depend on
# OUT/.build-flags, which changes only when a compiler or the flags do:
# switching SANITIZE=, WERROR=, CC= or CFLAGS= rebuilds instead of mixing
# old and new objects.
define compile
$(3)/.build-flags: FORCE
	@mkdir -p $$(@D)
	@printf '%s\n' '$$(subst ','\'',$$($(1)-cc) $$($(1)-cxx) | $$($(1)-cflags) | $$($(1)-cxxflags) $(5) | $$($(1)-ldflags) | $$($(1)-libs))' > $$@.tmp; \
	$$(update_file)

$(filter-out $(call cxx_objs,$(2),$(3),$(4)),$(4)): $(3)/%.o: $(2)/%.c $(3)/.build-flags
	@mkdir -p $$(@D)
	$$(call msg,CC,$$@)$$($(1)-cc) $$($(1)-cflags) $(5) $$(extra-cflags) -MMD -MP -c -o $$@ $$<

$(call cxx_objs,$(2),$(3),$(4)): $(3)/%.o: $(2)/%.cpp $(3)/.build-flags
	@mkdir -p $$(@D)
	$$(call msg,CXX,$$@)$$($(1)-cxx) $$($(1)-cxxflags) $(5) $$(extra-cxxflags) -MMD -MP -c -o $$@ $$<

$(1)-outputs += $(4) $(4:.o=.d) $(3)/*.o $(3)/*.d $(3)/.build-flags $(3)/.build-flags.tmp
ALL_OBJS += $(4)
endef

# $(call link,DIR,PROG): $(O)/DIR/PROG from its objects, by DIR's C++
# compiler if any of them is C++, else by its C compiler.
define link
$(O)/$(1)/$(2): $(call prog_objs,$(1),$(2)) $(call lib_objs,$(1)) $(filter-out -%,$(call prog_libs,$(1),$(2)))
	$$(call msg,LD,$$@)$$($(call vp,$(1))-$(if $(call cxx_objs,$(1),$(O)/$(1),$(call prog_objs,$(1),$(2))),cxx,cc)) \
		$$($(call vp,$(1))-ldflags) -o $$@ $(call prog_objs,$(1),$(2)) \
		$(call lib_objs,$(1)) $$(call prog_libs,$(1),$(2)) $$($(2)-ldlibs)

$(call prog_objs,$(1),$(2)): private extra-cflags = $$($(2)-cflags)
$(call prog_objs,$(1),$(2)): private extra-cxxflags = $$($(2)-cxxflags)
$(call vp,$(1))-outputs += $(O)/$(1)/$(2)
endef

$(foreach d,$(OBJ_DIRS),$(eval $(call compile,$(d),$(d),$(O)/$(d),$($(d)-objs))))
$(foreach d,$(PROG_DIRS), \
	$(eval $(call compile,$(call vp,$(d)),$(d),$(O)/$(d),$($(call vp,$(d))-objs))) \
	$(if $($(call vp,$(d))-lib-y),$(eval $(call compile,$(call vp,$(d)),lib,$(O)/$(d)/lib,$(call lib_objs,$(d))))) \
	$(foreach p,$($(call vp,$(d))-y),$(eval $(call link,$(d),$(p)))))

# The directories left empty go too, with their parents, deepest first;
# never $(O) itself.
reverse = $(if $(1),$(call reverse,$(wordlist 2,$(words $(1)),$(1))) $(firstword $(1)))
up = $(if $(filter-out $(O) .,$(1)),$(1) $(call up,$(patsubst %/,%,$(dir $(1)))))
out_dirs = $(call reverse,$(sort $(foreach d,$(sort $(patsubst %/,%,$(dir $(1)))),$(call up,$(d)))))

$(addsuffix -clean,$(call vp,$(BUILD_DIRS))): %-clean:
	$(Q)rm -rf $($*-outputs) $($*-clean-files)
	$(Q)rmdir $(filter-out $(O),$(call out_dirs,$($*-outputs))) 2>/dev/null || true

.PHONY: $(addsuffix -clean,$(call vp,$(BUILD_DIRS))) FORCE
FORCE:
