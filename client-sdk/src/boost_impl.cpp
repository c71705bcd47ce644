// The one translation unit that compiles Asio, Asio's SSL support, Beast and Boost.JSON into the
// SDK's shared library (BOOST_ASIO_SEPARATE_COMPILATION / BOOST_BEAST_SEPARATE_COMPILATION are
// private to the SDK target). With hidden visibility none of it is exported, so a consumer's own
// Boost (any version) never meets ours, and the SDK needs no Boost library at run time.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
#include <boost/json/src.hpp>
