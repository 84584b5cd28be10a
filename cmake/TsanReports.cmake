# TsanReports.cmake: the ThreadSanitizer reports of a test run, one file per
# process that had any (TSAN_OPTIONS log_path, cmake/Sanitizers.cmake).
#   cmake -DDIR=D -DCLEAR=1 -P TsanReports.cmake   before the tests: D emptied
#   cmake -DDIR=D -P TsanReports.cmake             after them: each report
#                                                  printed; fails if any
if(CLEAR)
  file(REMOVE_RECURSE ${DIR})
  file(MAKE_DIRECTORY ${DIR})
  return()
endif()
file(GLOB reports ${DIR}/report.*)
if(NOT reports)
  message(STATUS "no ThreadSanitizer report")
  return()
endif()
foreach(f ${reports})
  file(READ ${f} text)
  message("==== ${f}\n${text}")
endforeach()
list(LENGTH reports n)
message(FATAL_ERROR "ThreadSanitizer: ${n} process(es) reported (above; files in ${DIR})")
