{#-
    On the weekly grain (var grain / ECOM_LAND_GRAIN), every row is dated by its week's first day
    (week_start): a row dated on another weekday would fall off the SKU-week spine and vanish from
    the features. On the daily grain any day is a period, and nothing is checked.
-#}
{% test dated_on_period_start(model, column_name) %}

select {{ column_name }}
from {{ model }}
{%- if is_weekly() %}
where {{ column_name }} <> {{ week_start_of(column_name) }}
{%- else %}
where 1 = 0
{%- endif %}

{% endtest %}
