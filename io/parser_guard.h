// Debian's GDCM is built with assertions, and some malformed inputs trip
// them: assert() would abort the whole conversion. rapidnii defines glibc's
// __assert_fail in the executable (the dynamic linker binds GDCM's
// assertions to it). Inside run_guarded() a failed assertion jumps back to
// the guard, which reports failure: the file is skipped as malformed and the
// run goes on. (An exception cannot be used: some GDCM frames cannot be
// unwound.) What the abandoned parse had allocated is leaked: a few
// allocations per malformed file. Outside a guard an assertion still aborts.
#pragma once

namespace rapidnii::io {

using GuardFn = void (*)(void*);
bool run_guarded_raw(GuardFn fn, void* ctx);

// Runs f(); returns false when a library assertion fired inside it. f must
// not hold locks or other resources whose release matters across the jump.
template <class F>
bool run_guarded(F& f) {
  return run_guarded_raw([](void* c) { (*static_cast<F*>(c))(); }, &f);
}

}  // namespace rapidnii::io
