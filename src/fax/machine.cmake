# The fax machine on top of the agent library (queue, inbox, daemon logic), kept out of sb_fax so
# the T.38/document core stays transport-agnostic.
add_library(sb_fax_machine STATIC
  ${CMAKE_CURRENT_LIST_DIR}/queue.cpp
  ${CMAKE_CURRENT_LIST_DIR}/inbox.cpp
  ${CMAKE_CURRENT_LIST_DIR}/machine.cpp
  ${CMAKE_CURRENT_LIST_DIR}/document_set.cpp)
target_include_directories(sb_fax_machine PUBLIC ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(sb_fax_machine
  PUBLIC sb_fax sb_agent
  PRIVATE SQLite::SQLite3 nlohmann_json::nlohmann_json spdlog::spdlog)
