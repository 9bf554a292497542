// Included first by every per-ISA translation unit (CMake: NIMBLEOPS_ISA_SOURCES, compiled once
// per level with that level's flags and -DNIMBLEOPS_ISA=<level>): NIMBLEOPS_ISA_NS names the
// unit's namespace, isa_<level>, so no inline code built for a wider ISA can leak into another
// level. Such units keep away from std:: templates for the same reason.
#pragma once

#ifndef NIMBLEOPS_ISA
#error "NIMBLEOPS_ISA must name the SIMD level this unit is compiled for"
#endif
#define NIMBLEOPS_CAT2(a, b) a##b
#define NIMBLEOPS_CAT(a, b) NIMBLEOPS_CAT2(a, b)
#define NIMBLEOPS_ISA_NS NIMBLEOPS_CAT(isa_, NIMBLEOPS_ISA)
