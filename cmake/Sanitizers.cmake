# Sanitizers.cmake: BOOKREC_SANITIZE (`make test SANITIZE=...`) for every
# target, and what the tests need to run under it (bookrec_sanitizer_tests,
# called at the end of tests/CMakeLists.txt).
#
# ThreadSanitizer knows only the synchronisation it sees. GCC's OpenMP
# runtime (libgomp) is not instrumented and its barriers are futexes, so
# under gcc the end of every parallel loop would be reported as a race
# between the workers' writes and the caller's reads. LLVM's runtime
# (libomp) tells TSan about its barriers, tasks and locks through Archer,
# its OMPT tool (libarcher, loaded by OMP_TOOL_LIBRARIES): a TSan build is a
# clang build (`make ... SANITIZE=thread` configures with CC=clang), and
# what is left to suppress, each with its reason, is in tests/tsan.supp.
# ctest sets the environment (below); to run a program of a TSan build by
# hand, set the same two variables (`ctest -V -R NAME` shows them).

if(NOT BOOKREC_SANITIZE)
  function(bookrec_sanitizer_tests)
  endfunction()
  return()
endif()

string(REPLACE "," ";" BR_SANITIZERS "${BOOKREC_SANITIZE}")
if("thread" IN_LIST BR_SANITIZERS)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR
      "BOOKREC_SANITIZE=thread needs clang and its OpenMP runtime (libomp, with Archer): "
      "under ${CMAKE_C_COMPILER_ID}'s libgomp ThreadSanitizer reports every parallel loop. "
      "Configure a new build folder with CC=clang (Debian: clang libomp-dev), "
      "as `make test SANITIZE=thread` does.")
  endif()
  # Archer sits beside the libomp FindOpenMP chose (Debian: /usr/lib/llvm-N/lib).
  get_filename_component(BR_OMP_LIBDIR "${OpenMP_omp_LIBRARY}" DIRECTORY)
  find_library(BOOKREC_ARCHER_LIBRARY archer HINTS ${BR_OMP_LIBDIR} NO_DEFAULT_PATH)
  if(NOT BOOKREC_ARCHER_LIBRARY)
    message(FATAL_ERROR "BOOKREC_SANITIZE=thread: no libarcher.so beside ${OpenMP_omp_LIBRARY} "
                        "(Debian: libomp-dev)")
  endif()
  # Reports go to files, one per process (the servers the CLI tests start
  # in the background too), and the tsan_reports test fails on any of them.
  set(BR_TSAN_LOG_DIR ${PROJECT_BINARY_DIR}/tsan-reports)
  set(BR_TSAN_ENV
    "TSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp:ignore_noninstrumented_modules=1:second_deadlock_stack=1:log_path=${BR_TSAN_LOG_DIR}/report"
    "OMP_TOOL_LIBRARIES=${BOOKREC_ARCHER_LIBRARY}")
endif()

add_compile_options(-fsanitize=${BOOKREC_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
if(BR_TSAN_ENV)
  # At -O0 the tests run several times slower under TSan than at -O1, the
  # level its documentation recommends; only in Debug (the Makefile's build
  # type for sanitizers), where no other -O is on the command line. clang's
  # -O1 does not vectorise, so each `#pragma omp simd` loop would warn that
  # it was not (-Wpass-failed): expected here, not a defect of the loop.
  add_compile_options($<$<CONFIG:Debug>:-O1> -Wno-pass-failed)
endif()
add_link_options(-fsanitize=${BOOKREC_SANITIZE})

# Every test of the calling directory (tests/) runs in the environment above,
# also the tests added after this call's line: tests/CMakeLists.txt defers
# it to the end of the folder (cmake_language(DEFER)).
function(bookrec_sanitizer_tests)
  if(NOT BR_TSAN_ENV)
    return()
  endif()
  get_property(tests DIRECTORY PROPERTY TESTS)
  foreach(t ${tests})
    set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT ${BR_TSAN_ENV})
    set_property(TEST ${t} APPEND PROPERTY FIXTURES_REQUIRED tsan)
  endforeach()
  add_test(NAME tsan_reports_clear COMMAND ${CMAKE_COMMAND} -DDIR=${BR_TSAN_LOG_DIR} -DCLEAR=1
                                           -P ${PROJECT_SOURCE_DIR}/cmake/TsanReports.cmake)
  add_test(NAME tsan_reports COMMAND ${CMAKE_COMMAND} -DDIR=${BR_TSAN_LOG_DIR}
                                     -P ${PROJECT_SOURCE_DIR}/cmake/TsanReports.cmake)
  set_tests_properties(tsan_reports_clear PROPERTIES FIXTURES_SETUP tsan)
  set_tests_properties(tsan_reports PROPERTIES FIXTURES_CLEANUP tsan)
endfunction()
