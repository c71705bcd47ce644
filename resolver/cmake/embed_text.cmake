# Turns a text file into a C++ source with one std::string_view constant, at build time, so that
# the binary carries the file and never looks for it at run time.
#   cmake -DINPUT=<file> -DOUTPUT=<file.cpp> -DNAMESPACE=<ns> -DSYMBOL=<name> [-DJSON=ON]
#         -P embed_text.cmake
# JSON=ON refuses a file that is not one valid JSON document (a broken docs/openapi.json fails
# the build instead of being served).
foreach(var INPUT OUTPUT NAMESPACE SYMBOL)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_text.cmake: -D${var}= is required")
  endif()
endforeach()
file(READ "${INPUT}" content)
if(JSON)
  string(JSON kind ERROR_VARIABLE json_error TYPE "${content}")
  if(json_error)
    message(FATAL_ERROR "${INPUT} is not valid JSON: ${json_error}")
  endif()
endif()
# A raw string literal; its delimiter must not occur in the text.
set(delimiter "idnode_embed")
string(FIND "${content}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )${delimiter}\"")
endif()
get_filename_component(input_name "${INPUT}" NAME)
set(text "// Generated at build time from ${input_name} by resolver/cmake/embed_text.cmake: do not edit.
#include <string_view>

namespace ${NAMESPACE} {
extern const std::string_view ${SYMBOL};
const std::string_view ${SYMBOL} = R\"${delimiter}(${content})${delimiter}\";
} // namespace ${NAMESPACE}
")
# Rewritten only when it changes, so that an unchanged document recompiles nothing.
set(old "")
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUTPUT}" "${text}")
endif()
