# Writes a C source holding a file's bytes as a NUL-terminated char array:
#   cmake -DINPUT=<file> -DOUTPUT=<file.c> -DSYMBOL=<name> -P embed_ptx.cmake
# gives  const char <name>[] = {...,0x00};  const size_t <name>_size = <bytes>;
# (a byte array rather than a string literal: no escaping, no literal length limit).
foreach(var INPUT OUTPUT SYMBOL)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_ptx.cmake: -D${var}=... is required")
  endif()
endforeach()
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
if(size EQUAL 0)
  message(FATAL_ERROR "embed_ptx.cmake: ${INPUT} is empty")
endif()
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REPLACE "0x0a," "0x0a,\n" body "${body}") # one line of C per line of text
file(WRITE "${OUTPUT}.tmp"
  "/* Generated from ${INPUT} by runtime/cuda/embed_ptx.cmake: do not edit. */\n"
  "#include <stddef.h>\n"
  "const char ${SYMBOL}[] = {\n${body}0x00};\n"
  "const size_t ${SYMBOL}_size = ${size};\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
